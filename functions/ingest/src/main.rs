//! The ingest Lambda: the partner API behind API Gateway (HTTP API).

use std::sync::Arc;

use ingest::Ingest;
use lambda_http::{service_fn, Body, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadhub::telemetry::init_json();
    let aws = leadhub::runtime::aws_dependencies().await?;
    let ingest = Arc::new(Ingest {
        config: aws.config.clone(),
        store: aws.store.clone(),
        sealed_ssns: aws.store.clone(),
        validate_queue: aws.queue("LEADHUB_VALIDATE_QUEUE_URL")?,
    });
    lambda_http::run(service_fn(move |request: Request| {
        let ingest = ingest.clone();
        async move {
            let (parts, body) = request.into_parts();
            let response = ingest
                .handle(http::Request::from_parts(parts, body.to_vec()))
                .await;
            Ok::<_, Error>(response.map(Body::from))
        }
    }))
    .await
}
