//! AWS SDK errors in words: the service, the operation, and the service's code and message (which never
//! quote item values or message bodies), or the transport failure.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub(crate) fn describe<E, R>(service: &str, operation: &str, error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match error {
        SdkError::ServiceError(failure) => {
            let error = failure.err();
            format!(
                "{service} {operation}: {}: {}",
                error.code().unwrap_or("unknown error"),
                error.message().unwrap_or("no message")
            )
        }
        other => format!("{service} {operation}: {}", DisplayErrorContext(other)),
    }
}
