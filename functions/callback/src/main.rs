//! The callback Lambda: buyers' verdicts behind API Gateway (HTTP API).

use std::sync::Arc;

use callback::Callback;
use lambda_http::{service_fn, Body, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadhub::telemetry::init_json();
    let aws = leadhub::runtime::aws_dependencies().await?;
    let callback = Arc::new(Callback {
        config: aws.config.clone(),
        store: aws.store.clone(),
        dispatch_queue: aws.queue("LEADHUB_DISPATCH_QUEUE_URL")?,
        suppressions: aws.store.clone(),
        leadsafe_reports: aws.store.clone(),
        transport: Arc::new(leadhub::transport::ReqwestTransport::new()),
        buyer_refs: aws.store.clone(),
        tallies: aws.store.clone(),
        unparsed_callbacks: aws.store.clone(),
    });
    lambda_http::run(service_fn(move |request: Request| {
        let callback = callback.clone();
        async move {
            let (parts, body) = request.into_parts();
            let response = callback
                .handle(http::Request::from_parts(parts, body.to_vec()))
                .await;
            Ok::<_, Error>(response.map(Body::from))
        }
    }))
    .await
}
