//! `sessions decode`.

use std::time::SystemTime;

use session_core::serializer::json;
use session_core::value::Value;

use crate::Error;
use crate::args::DecodeArgs;

/// Verifies and decodes `args.data` as of `now`, returning the session dict as one line of JSON
/// in Django's rendering (`json.dumps(session, separators=(",", ":"))`).
///
/// # Errors
/// [`Error::MissingSecret`] / [`Error::Config`] for unusable options, and [`Error::Decode`] with
/// the [`DecodeFailure`](crate::DecodeFailure) class for a value that does not decode.
pub fn decode(args: &DecodeArgs, now: SystemTime) -> Result<String, Error> {
    let codec = args.codec.codec(&args.keys)?;
    let session = codec
        .try_decode_at(&args.data, args.max_age, now)
        .map_err(Error::decode)?;
    json::to_string(&Value::Dict(session))
        .map_err(|error| Error::decode(session_core::Error::Serializer(error)))
}
