//! Keyset pagination: opaque cursors and checked page sizes.

use super::ApiError;
use super::ProblemType;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Page size when none is asked for.
pub const DEFAULT_LIMIT: i64 = 100;
/// The largest page size.
pub const MAX_LIMIT: i64 = 1000;

/// Checks `limit` (1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]).
pub fn limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::problem(
            ProblemType::InvalidLimit,
            format!("limit must be between 1 and {MAX_LIMIT}, not {n}."),
        )),
    }
}

/// Cuts rows fetched with one extra (`limit + 1`) down to the page, and
/// makes the cursor of the next page from the page's last row when more
/// follow.
pub fn next_page<T>(
    mut rows: Vec<T>,
    limit: i64,
    kind: char,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if rows.len() as i64 <= limit {
        return (rows, None);
    }
    rows.truncate(limit as usize);
    let next = rows.last().map(|last| encode(kind, &key(last)));
    (rows, next)
}

/// Makes an opaque cursor for a keyset position of the given kind (a letter
/// that keeps one list's cursor from being used on another).
pub fn encode(kind: char, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{key}"))
}

/// Reads a cursor made by [`encode`] with the same kind.
pub fn decode(kind: char, cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            let key = text.strip_prefix(kind)?.strip_prefix(':')?;
            (!key.is_empty()).then(|| key.to_owned())
        })
        .ok_or_else(invalid_cursor)
}

/// Reads a cursor that holds a report position.
pub fn decode_position(cursor: &str) -> Result<i64, ApiError> {
    decode('p', cursor)?
        .parse::<i64>()
        .ok()
        .filter(|p| *p >= 0)
        .ok_or_else(invalid_cursor)
}

fn invalid_cursor() -> ApiError {
    ApiError::problem(
        ProblemType::InvalidCursor,
        "The cursor is not one this API returned for this list; start again without it.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_only_for_its_own_kind() {
        let cursor = encode('i', "0193a1b2-0000");
        assert_eq!(decode('i', &cursor).unwrap(), "0193a1b2-0000");
        assert!(decode('u', &cursor).is_err());
    }

    #[test]
    fn garbage_and_negative_positions_are_bad_cursors() {
        for cursor in ["", "!!!", "cDo", &encode('p', "-3"), &encode('p', "x")] {
            assert!(decode_position(cursor).is_err(), "{cursor}");
        }
        assert_eq!(decode_position(&encode('p', "42")).unwrap(), 42);
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_follow() {
        let (page, next) = next_page(vec![1, 2, 3], 2, 'p', |n| n.to_string());
        assert_eq!((page, next), (vec![1, 2], Some(encode('p', "2"))));
        let (page, next) = next_page(vec![1, 2], 2, 'p', |n| n.to_string());
        assert_eq!((page, next), (vec![1, 2], None));
    }

    #[test]
    fn limits_outside_one_to_a_thousand_are_refused() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some(1000)).unwrap(), 1000);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(1001)).is_err());
        assert!(limit(Some(-5)).is_err());
    }
}
