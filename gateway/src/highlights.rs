//! Search highlights as a browser can use them: the room-service marks
//! the words found as byte ranges of the message's UTF-8 text, while a
//! page slices `text` by JavaScript string indices, which count UTF-16
//! code units. An emoji is 4 bytes but 2 units, `é` 2 bytes but 1 unit, so
//! every range is converted, never passed on as it came.

use chat_proto::v1::TextRange;

/// `ranges` (byte offsets of `text`, `[start, end)`) as `[start, end]`
/// UTF-16 code unit offsets of the same text, in the same order. A range
/// that is empty, reversed, past the end, or not on character boundaries
/// names no words of this text and is left out: it comes from a
/// room-service, and a bad one must not take the answer down.
pub(crate) fn utf16_ranges(text: &str, ranges: &[TextRange]) -> Vec<[u32; 2]> {
    // Ranges come in order, so the walk through the text goes forward once;
    // one out of order starts it over.
    let mut walked = Walked::default();
    ranges
        .iter()
        .filter_map(|range| {
            let (start, end) = (usize::try_from(range.start).ok()?, usize::try_from(range.end).ok()?);
            if start >= end || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                return None;
            }
            Some([walked.units_to(text, start), walked.units_to(text, end)])
        })
        .collect()
}

/// How far into the text the conversion has counted.
#[derive(Default)]
struct Walked {
    bytes: usize,
    units: usize,
}

impl Walked {
    /// The UTF-16 offset of byte offset `byte`, a character boundary.
    fn units_to(&mut self, text: &str, byte: usize) -> u32 {
        if byte < self.bytes {
            *self = Self::default();
        }
        self.units += text.get(self.bytes..byte).map_or(0, |part| part.encode_utf16().count());
        self.bytes = byte;
        u32::try_from(self.units).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u32, end: u32) -> TextRange {
        TextRange { start, end }
    }

    /// What JavaScript's `text.slice(start, end)` gives for a UTF-16 range.
    fn js_slice(text: &str, [start, end]: [u32; 2]) -> String {
        let units: Vec<u16> = text.encode_utf16().collect();
        String::from_utf16(&units[start as usize..end as usize]).expect("whole characters")
    }

    #[test]
    fn byte_ranges_become_the_utf16_ranges_of_the_same_words() {
        let text = "🎉 привет мир, café 🎉 ok";
        let words = ["привет", "мир", "café", "ok"];
        let ranges: Vec<TextRange> = words
            .iter()
            .map(|word| {
                let start = text.find(word).expect("in the text");
                range(start as u32, (start + word.len()) as u32)
            })
            .collect();
        let converted = utf16_ranges(text, &ranges);
        assert_eq!(converted[0], [3, 9], "the emoji is 4 bytes, 2 units; the space 1");
        let sliced: Vec<String> = converted.iter().map(|r| js_slice(text, *r)).collect();
        assert_eq!(sliced, words);
    }

    #[test]
    fn ranges_out_of_order_convert_alike() {
        let text = "é a é b";
        let forward = utf16_ranges(text, &[range(3, 4), range(8, 9)]);
        let backward = utf16_ranges(text, &[range(8, 9), range(3, 4)]);
        assert_eq!(forward, [[2, 3], [6, 7]]);
        assert_eq!(backward, [[6, 7], [2, 3]]);
    }

    #[test]
    fn ranges_that_name_no_words_are_left_out_without_a_panic() {
        let text = "é🎉x";
        let bad = [range(1, 2), range(0, 3), range(2, 4), range(3, 3), range(4, 2), range(6, 99), range(0, u32::MAX)];
        assert!(utf16_ranges(text, &bad).is_empty());
        assert_eq!(utf16_ranges(text, &[range(1, 2), range(6, 7)]), [[3, 4]], "the good one among bad ones stays");
        assert!(utf16_ranges("", &[range(0, 1)]).is_empty());
    }
}
