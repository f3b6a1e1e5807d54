//! The dispatch Lambda: consumes the dispatch queue, calls buyers, reports partial batch failures.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use dispatch::Dispatch;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadhub::telemetry::init_json();
    let aws = leadhub::runtime::aws_dependencies().await?;
    let dispatch = Arc::new(Dispatch {
        config: aws.config.clone(),
        store: aws.store.clone(),
        counters: aws.store.clone(),
        dead_deliveries: aws.store.clone(),
        buyer_refs: aws.store.clone(),
        dispatch_queue: aws.queue("LEADHUB_DISPATCH_QUEUE_URL")?,
        transport: Arc::new(leadhub::transport::ReqwestTransport::new()),
        notifications: aws.store.clone(),
        partner_transport: Arc::new(leadhub::transport::ReqwestTransport::guarded(
            aws.config.current().url_policy,
        )),
        tallies: aws.store.clone(),
        pacer: Default::default(),
        buyer_tokens: aws.store.clone(),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let dispatch = dispatch.clone();
        async move { Ok::<_, Error>(dispatch.handle_batch(event.payload).await) }
    }))
    .await
}
