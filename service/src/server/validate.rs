//! Request validation with field paths: every problem names the field it is about, as the API
//! documents (`request.patient.home.lat: ...`), and becomes a gRPC status carrying the path in
//! its message and in a `google.rpc.BadRequest` detail.
//!
//! ```
//! use allot_service::server::validate::{FieldPath, check_id};
//!
//! let request = FieldPath::request();
//! let err = check_id("", &request.field("patient").field("id")).unwrap_err();
//! assert_eq!(err.to_string(), "request.patient.id: is required");
//! ```
//!
//! Handlers turn a protobuf request into the engine's validated types in one function returning
//! `Result<_, FieldError>`; the `?` operator converts a `FieldError` into a `tonic::Status`.

use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A path to a field of a request: `request.patient.home.lat`, `request.choices[2]`, or
/// `request[3].applicants[17].tier` for the fourth message of a client stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    /// The request message (of a unary or server-streaming call).
    pub fn request() -> Self {
        FieldPath("request".to_owned())
    }

    /// Message `index` (from 0) of a client stream.
    pub fn stream_message(index: usize) -> Self {
        FieldPath(format!("request[{index}]"))
    }

    /// A field of this message.
    #[must_use]
    pub fn field(&self, name: &str) -> Self {
        FieldPath(format!("{}.{name}", self.0))
    }

    /// Element `index` (from 0) of this repeated field.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        FieldPath(format!("{}[{index}]", self.0))
    }

    /// The entry of this map field (or keyed collection) with `key`.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        FieldPath(format!("{}[{key:?}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a field is: its path, or what makes the path. The checks below make it only when the
/// value is wrong, so a valid submission of a million items formats no path.
pub trait Locate {
    fn locate(&self) -> FieldPath;
}

impl Locate for FieldPath {
    fn locate(&self) -> FieldPath {
        self.clone()
    }
}

impl<F: Fn() -> FieldPath> Locate for F {
    fn locate(&self) -> FieldPath {
        self()
    }
}

/// A problem with one field of a request, and the status code it calls for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FieldError {
    pub path: FieldPath,
    pub problem: String,
    pub code: Code,
}

impl FieldError {
    /// The value is malformed, missing or outside what the field allows: INVALID_ARGUMENT.
    pub fn invalid(path: &FieldPath, problem: impl Into<String>) -> Self {
        FieldError {
            path: path.clone(),
            problem: problem.into(),
            code: Code::InvalidArgument,
        }
    }

    /// The value is well-formed but past the end of what exists now (e.g. an index beyond the
    /// log): OUT_OF_RANGE, which a later call may not get.
    pub fn out_of_range(path: &FieldPath, problem: impl Into<String>) -> Self {
        FieldError {
            code: Code::OutOfRange,
            ..Self::invalid(path, problem)
        }
    }

    /// The value names something that does not exist: NOT_FOUND.
    pub fn not_found(path: &FieldPath, problem: impl Into<String>) -> Self {
        FieldError {
            code: Code::NotFound,
            ..Self::invalid(path, problem)
        }
    }

    /// The value is valid but the system is not in a state to act on it: FAILED_PRECONDITION.
    pub fn failed_precondition(path: &FieldPath, problem: impl Into<String>) -> Self {
        FieldError {
            code: Code::FailedPrecondition,
            ..Self::invalid(path, problem)
        }
    }
}

impl From<FieldError> for Status {
    fn from(e: FieldError) -> Status {
        let message = e.to_string();
        Status::with_error_details(
            e.code,
            message,
            ErrorDetails::with_bad_request_violation(e.path.0, e.problem),
        )
    }
}

/// The most bytes an identifier may have.
pub const MAX_ID_BYTES: usize = 128;

/// An identifier: non-empty, at most [`MAX_ID_BYTES`] bytes, no control characters.
pub fn check_id<'a>(value: &'a str, path: &impl Locate) -> Result<&'a str, FieldError> {
    if value.is_empty() {
        return Err(FieldError::invalid(&path.locate(), "is required"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(FieldError::invalid(
            &path.locate(),
            format!(
                "is {} bytes long; identifiers have at most {MAX_ID_BYTES}",
                value.len()
            ),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(FieldError::invalid(
            &path.locate(),
            format!("contains the control character {c:?}"),
        ));
    }
    Ok(value)
}

/// An optional identifier (an empty string means absent), checked like [`check_id`] when set.
pub fn check_optional_id<'a>(
    value: &'a str,
    path: &impl Locate,
) -> Result<Option<&'a str>, FieldError> {
    if value.is_empty() {
        Ok(None)
    } else {
        check_id(value, path).map(Some)
    }
}

/// A message field that must be set.
pub fn required<'a, T>(value: Option<&'a T>, path: &impl Locate) -> Result<&'a T, FieldError> {
    value.ok_or_else(|| FieldError::invalid(&path.locate(), "is required"))
}

/// A number within `min..=max`.
pub fn check_range<T>(value: T, min: T, max: T, path: &impl Locate) -> Result<T, FieldError>
where
    T: PartialOrd + fmt::Display + Copy,
{
    if value < min || value > max {
        return Err(FieldError::invalid(
            &path.locate(),
            format!("{value} is outside {min} to {max}"),
        ));
    }
    Ok(value)
}

/// A finite floating-point number within `min..=max`.
pub fn check_finite(value: f64, min: f64, max: f64, path: &impl Locate) -> Result<f64, FieldError> {
    if !value.is_finite() {
        return Err(FieldError::invalid(
            &path.locate(),
            format!("{value} is not a finite number"),
        ));
    }
    check_range(value, min, max, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_as_documented() {
        let stream = FieldPath::stream_message(3);
        assert_eq!(
            stream.field("applicants").index(17).field("tier").as_str(),
            "request[3].applicants[17].tier"
        );
        assert_eq!(
            FieldPath::request().field("fields").key("a b").as_str(),
            "request.fields[\"a b\"]"
        );
    }

    #[test]
    fn identifiers() {
        check("clinic-17", None);
        check("", Some("request.id: is required"));
        check(
            "a\nb",
            Some("request.id: contains the control character '\\n'"),
        );
        check(
            &"x".repeat(129),
            Some("request.id: is 129 bytes long; identifiers have at most 128"),
        );

        fn check(value: &str, expect: Option<&str>) {
            let path = FieldPath::request().field("id");
            let got = check_id(value, &path).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), expect, "{value:?}");
        }
    }

    #[test]
    fn status_carries_code_message_and_bad_request_detail() {
        let path = FieldPath::request().field("home").field("lat");
        let status = Status::from(check_finite(91.0, -90.0, 90.0, &path).unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "request.home.lat: 91 is outside -90 to 90"
        );
        let details = status.get_error_details();
        let violation = &details
            .bad_request()
            .expect("a BadRequest detail")
            .field_violations[0];
        assert_eq!(violation.field, "request.home.lat");
        assert_eq!(violation.description, "91 is outside -90 to 90");
        let nan = check_finite(f64::NAN, -90.0, 90.0, &path).unwrap_err();
        assert_eq!(
            nan.to_string(),
            "request.home.lat: NaN is not a finite number"
        );
    }
}
