//! An error with every cause under it, on one line, for logs: `Display` of most errors
//! shows only the outermost message, and the cause that explains it (an I/O error under a
//! database error, say) would otherwise be lost before it reaches the log.

use std::error::Error;

/// `error: cause: cause of the cause …`, skipping a cause whose text the level above
/// already repeats (as `#[error(transparent)]` and many wrappers do).
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let shown = cause.to_string();
        if !text.ends_with(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("database error")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_kept() {
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        ));
        assert_eq!(
            error_chain(&error),
            "database error: connection reset by peer"
        );
    }
}
