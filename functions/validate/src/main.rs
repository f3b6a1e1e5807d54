//! The validate Lambda: consumes the validate queue, reports partial batch failures.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use validate::Validate;

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadhub::telemetry::init_json();
    let aws = leadhub::runtime::aws_dependencies().await?;
    let validate = Arc::new(Validate {
        config: aws.config.clone(),
        store: aws.store.clone(),
        counters: aws.store.clone(),
        dispatch_queue: aws.queue("LEADHUB_DISPATCH_QUEUE_URL")?,
        suppressions: aws.store.clone(),
        sealed_ssns: aws.store.clone(),
        validate_queue: aws.queue("LEADHUB_VALIDATE_QUEUE_URL")?,
        transport: Arc::new(leadhub::transport::ReqwestTransport::new()),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let validate = validate.clone();
        async move { Ok::<_, Error>(validate.handle_batch(event.payload).await) }
    }))
    .await
}
