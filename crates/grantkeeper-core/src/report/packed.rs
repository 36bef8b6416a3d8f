//! A column of short strings packed into one string, the form the connections list's text travels
//! in: the window parses one string and one number array per column instead of a string per row,
//! and keeps those instead of tens of thousands of small strings on its heap.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Optional strings, one per row, packed end to end into `text`. Row `i`'s value ends at
/// `ends[i]` and starts where the last present value before it ends (0 for the first); it is
/// absent where `ends[i]` is null. Positions count UTF-16 code units, as JavaScript indexes
/// strings, so the window reads a value with one `slice`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct PackedStrings {
    /// Every present value, one after another.
    pub text: String,
    /// Per row: where its value ends in `text` (UTF-16 code units); null when absent.
    pub ends: Vec<Option<u32>>,
}

impl PackedStrings {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every row's value in order (walks the text once).
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> {
        let mut rest = self.text.as_str();
        let mut at = 0u32;
        self.ends.iter().map(move |end| {
            let end = (*end)?;
            let mut units = 0;
            let bytes = rest
                .char_indices()
                .find(|(_, c)| {
                    let done = at + units >= end;
                    units += c.len_utf16() as u32;
                    done
                })
                .map_or(rest.len(), |(b, _)| b);
            let (value, tail) = rest.split_at(bytes);
            rest = tail;
            at = end;
            Some(value)
        })
    }

    /// Row `i`'s value: `None` past the end, `Some(None)` when absent.
    pub fn get(&self, i: usize) -> Option<Option<&str>> {
        self.iter().nth(i)
    }
}

impl<'a> FromIterator<Option<&'a str>> for PackedStrings {
    fn from_iter<I: IntoIterator<Item = Option<&'a str>>>(values: I) -> Self {
        let mut out = Self::default();
        let mut units = 0usize;
        for value in values {
            out.ends.push(value.map(|v| {
                out.text.push_str(v);
                units += v.encode_utf16().count();
                u32::try_from(units).expect("a column's text is shorter than 4 GiB")
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_with_absent_and_empty_ones_kept_apart() {
        let values = [
            Some("acme-crm"),
            None,
            Some(""),
            Some("Zoë 🦀 ops"),
            None,
            Some("x"),
        ];
        let packed: PackedStrings = values.iter().copied().collect();
        assert_eq!(packed.len(), 6);
        assert_eq!(packed.text, "acme-crmZoë 🦀 opsx");
        // "Zoë 🦀 ops": 10 UTF-16 units (ë is one, the crab two), 13 bytes in Rust.
        assert_eq!(
            packed.ends,
            [Some(8), None, Some(8), Some(18), None, Some(19)]
        );
        assert_eq!(packed.iter().collect::<Vec<_>>(), values);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(packed.get(i), Some(*v));
        }
        assert_eq!(packed.get(6), None);
        assert_eq!(
            serde_json::to_string(&packed).unwrap(),
            r#"{"text":"acme-crmZoë 🦀 opsx","ends":[8,null,8,18,null,19]}"#
        );
    }

    #[test]
    fn no_rows_and_only_absent_rows() {
        assert!(PackedStrings::default().is_empty());
        let packed: PackedStrings = [None, None].into_iter().collect();
        assert_eq!(packed.text, "");
        assert_eq!(packed.iter().collect::<Vec<_>>(), [None, None]);
    }
}
