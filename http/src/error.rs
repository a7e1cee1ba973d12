//! Every way a request can be refused, and the one table mapping each to its status code.

/// A request the server refuses. `status()` is the only place that maps errors to codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Syntax error in the request line or a header line (httparse refused it).
    MalformedHead,
    /// A CR not followed by LF, or an LF not preceded by CR, in the head.
    BareCrOrLf,
    /// A header line starting with whitespace (obsolete line folding).
    ObsoleteFold,
    /// Whitespace between a header name and its colon, or an invalid name character.
    InvalidHeaderName,
    /// A control character (NUL, ...) in a header value.
    InvalidHeaderValue,
    /// The request target is not origin-form, absolute-form, or `*` for OPTIONS.
    InvalidTarget,
    /// HTTP/1.1 without a Host header, or several Host headers.
    BadHost,
    /// Both Content-Length and Transfer-Encoding.
    LengthAndTransferEncoding,
    /// A Content-Length that is not a non-negative decimal number, or overflows u64.
    InvalidContentLength,
    /// Several Content-Length values that differ.
    ConflictingContentLength,
    /// A Transfer-Encoding whose final coding is not `chunked`, or repeated `chunked`.
    BadTransferEncoding,
    /// A Transfer-Encoding with codings we do not implement before a final `chunked`.
    UnsupportedTransferEncoding,
    /// A chunk size that is not hex, is empty, or overflows.
    BadChunkSize,
    /// A malformed chunk extension, or a missing CRLF after chunk data.
    BadChunkFraming,
    /// Chunk extensions or trailers beyond their size limit.
    ChunkMetadataTooLarge,
    /// A protocol version other than HTTP/1.0 and HTTP/1.1.
    UnsupportedVersion,
    /// An Expect header other than `100-continue`.
    UnsupportedExpectation,
    /// The request line is longer than the limit.
    RequestLineTooLong,
    /// Too many header fields, one field too large, or the whole head too large.
    HeadersTooLarge,
    /// The body is larger than the limit.
    BodyTooLarge,
}

impl HttpError {
    /// The status code this error is answered with (its reason phrase comes from
    /// [`crate::status`]).
    pub fn status(self) -> u16 {
        use HttpError::*;
        match self {
            MalformedHead
            | BareCrOrLf
            | ObsoleteFold
            | InvalidHeaderName
            | InvalidHeaderValue
            | InvalidTarget
            | BadHost
            | LengthAndTransferEncoding
            | InvalidContentLength
            | ConflictingContentLength
            | BadTransferEncoding
            | BadChunkSize
            | BadChunkFraming
            | ChunkMetadataTooLarge => 400,
            UnsupportedExpectation => 417,
            BodyTooLarge => 413,
            RequestLineTooLong => 414,
            HeadersTooLarge => 431,
            UnsupportedTransferEncoding => 501,
            UnsupportedVersion => 505,
        }
    }

    /// A short human explanation, used in the response body and the log.
    pub fn describe(self) -> &'static str {
        use HttpError::*;
        match self {
            MalformedHead => "the request line or a header line is malformed",
            BareCrOrLf => "a line in the request head does not end with CRLF",
            ObsoleteFold => "a header line starts with whitespace (obsolete line folding)",
            InvalidHeaderName => "a header name is not a token or is followed by whitespace",
            InvalidHeaderValue => "a header value contains a control character",
            InvalidTarget => "the request target is not a path, an http URL, or * for OPTIONS",
            BadHost => "the Host header is missing, repeated or malformed",
            LengthAndTransferEncoding => "both Content-Length and Transfer-Encoding were sent",
            InvalidContentLength => "the Content-Length is not a decimal number",
            ConflictingContentLength => "several differing Content-Length values were sent",
            BadTransferEncoding => "the Transfer-Encoding does not end with a single chunked",
            UnsupportedTransferEncoding => "only the chunked transfer coding is supported",
            BadChunkSize => "a chunk size is not a valid hexadecimal number",
            BadChunkFraming => "the chunked body is malformed",
            ChunkMetadataTooLarge => "chunk extensions or trailers are too large",
            UnsupportedVersion => "only HTTP/1.0 and HTTP/1.1 are supported",
            UnsupportedExpectation => "only the 100-continue expectation is supported",
            RequestLineTooLong => "the request line is too long",
            HeadersTooLarge => "the request head has too many or too large header fields",
            BodyTooLarge => "the request body is too large",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HttpError::{self, *};

    const ALL: [HttpError; 20] = [
        MalformedHead,
        BareCrOrLf,
        ObsoleteFold,
        InvalidHeaderName,
        InvalidHeaderValue,
        InvalidTarget,
        BadHost,
        LengthAndTransferEncoding,
        InvalidContentLength,
        ConflictingContentLength,
        BadTransferEncoding,
        UnsupportedTransferEncoding,
        BadChunkSize,
        BadChunkFraming,
        ChunkMetadataTooLarge,
        UnsupportedVersion,
        UnsupportedExpectation,
        RequestLineTooLong,
        HeadersTooLarge,
        BodyTooLarge,
    ];

    #[test]
    fn every_error_maps_to_a_client_or_server_error_status() {
        for e in ALL {
            let code = e.status();
            assert!((400..=505).contains(&code), "{e:?}");
            assert!(crate::status::reason_phrase(code).is_some(), "{e:?}");
            assert!(!e.describe().is_empty());
        }
    }

    #[test]
    fn smuggling_errors_answer_400() {
        for e in [
            LengthAndTransferEncoding,
            ConflictingContentLength,
            BadTransferEncoding,
            BareCrOrLf,
        ] {
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn limits_answer_their_own_codes() {
        assert_eq!(RequestLineTooLong.status(), 414);
        assert_eq!(HeadersTooLarge.status(), 431);
        assert_eq!(BodyTooLarge.status(), 413);
        assert_eq!(UnsupportedTransferEncoding.status(), 501);
        assert_eq!(UnsupportedVersion.status(), 505);
        assert_eq!(UnsupportedExpectation.status(), 417);
    }
}
