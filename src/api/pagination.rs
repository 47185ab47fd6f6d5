//! Keyset pagination: opaque cursors and checked page sizes.

use super::ApiError;
use super::ProblemType;

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

/// The cursor of the page after `key`: the key itself (an id, an address
/// key, or a position), so its shape is one the schema can state exactly
/// (`cursor`'s pattern) and any value of that shape is a place in the list.
pub fn encode(_kind: char, key: &str) -> String {
    key.to_owned()
}

/// The key a cursor of list `kind` holds: an id for imports (`i`), users
/// (`u`) and invitations (`v`), an address key for suppressions (`s`).
pub fn decode(kind: char, cursor: &str) -> Result<String, ApiError> {
    let fits = match kind {
        's' => {
            (1..=320).contains(&cursor.chars().count()) && !cursor.chars().any(|c| c.is_control())
        }
        _ => is_lowercase_uuid(cursor),
    };
    fits.then(|| cursor.to_owned()).ok_or_else(invalid_cursor)
}

/// The position a report cursor holds.
pub fn decode_position(cursor: &str) -> Result<i64, ApiError> {
    let digits = (1..=18).contains(&cursor.len()) && cursor.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| cursor.parse::<i64>().ok())
        .flatten()
        .ok_or_else(invalid_cursor)
}

/// `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`
fn is_lowercase_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
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
    fn a_cursor_reads_back_when_it_has_its_lists_shape() {
        let id = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
        assert_eq!(decode('i', &encode('i', id)).unwrap(), id);
        for bad in [
            "",
            "0193A1B2-7C3D-7E4F-8A9B-0C1D2E3F4A5B",
            "0193a1b2",
            "ann@x.io",
            &format!("{id}0"),
        ] {
            assert!(decode('u', bad).is_err(), "{bad}");
        }
        assert_eq!(decode('s', "ann@x.io").unwrap(), "ann@x.io");
        assert!(decode('s', "").is_err());
        assert!(decode('s', "a\u{7}b").is_err());
    }

    #[test]
    fn garbage_and_negative_positions_are_bad_cursors() {
        for cursor in ["", "!!!", "cDo", "-3", "x", "+4", "1234567890123456789"] {
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
