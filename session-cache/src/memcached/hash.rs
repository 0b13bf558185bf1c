//! Which server holds a key: pymemcache's `HashClient` placement, reproduced exactly.
//!
//! `HashClient` uses `RendezvousHash` (highest random weight): every server node, named
//! `"host:port"`, is scored with `murmur3_32(f"{node}-{key}", seed=0)` and the highest score wins
//! (a tie goes to the greater node name). pymemcache's `murmur3_32` is a pure-Python port that
//! reads the *characters* of the string, keeping the low byte of each code point, and mixes in
//! the number of characters: for ASCII this is the standard MurmurHash3 x86_32; for other
//! characters it differs from hashing UTF-8 bytes, and we follow pymemcache so that a Django site
//! and this crate agree on where every key lives.

/// pymemcache's `murmur3_32(data, seed)` over the characters of `data` (low byte of each code
/// point, length in characters).
pub(crate) fn murmur3_32(data: &str, seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;

    let mix = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    // Truncation is the point: pymemcache masks every code point with 0xFF.
    let low_byte = |c: char| u32::from(c) & 0xff;

    let mut h1 = seed;
    let mut length: u32 = 0;
    let mut block = [0u32; 4];
    let mut filled = 0;
    for c in data.chars() {
        length = length.wrapping_add(1);
        block[filled] = low_byte(c);
        filled += 1;
        if filled == 4 {
            let k1 = block[0] | (block[1] << 8) | (block[2] << 16) | (block[3] << 24);
            h1 ^= mix(k1);
            h1 = h1.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
            filled = 0;
        }
    }
    if filled > 0 {
        let mut k1 = 0;
        for (i, byte) in block[..filled].iter().enumerate() {
            k1 |= byte << (8 * i);
        }
        h1 ^= mix(k1);
    }

    h1 ^= length;
    h1 ^= h1 >> 16;
    h1 = h1.wrapping_mul(0x85eb_ca6b);
    h1 ^= h1 >> 13;
    h1 = h1.wrapping_mul(0xc2b2_ae35);
    h1 ^ (h1 >> 16)
}

/// The index of the node that holds `key` among `nodes` (`RendezvousHash.get_node`), or `None`
/// when there are no nodes.
pub(crate) fn rendezvous_node<S: AsRef<str>>(nodes: &[S], key: &str) -> Option<usize> {
    let mut winner: Option<(u32, usize)> = None;
    let mut scored = String::new();
    for (index, node) in nodes.iter().enumerate() {
        let node = node.as_ref();
        scored.clear();
        scored.push_str(node);
        scored.push('-');
        scored.push_str(key);
        let score = murmur3_32(&scored, 0);
        winner = match winner {
            None => Some((score, index)),
            Some((high, _)) if score > high => Some((score, index)),
            // pymemcache keeps `max(str(node), str(winner))`; UTF-8 order is code point order.
            Some((high, current)) if score == high && node > nodes[current].as_ref() => {
                Some((high, index))
            }
            unchanged => unchanged,
        };
    }
    winner.map(|(_, index)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_reference_for_ascii() {
        // MurmurHash3_x86_32 reference values (seed 0 unless stated).
        assert_eq!(murmur3_32("", 0), 0);
        assert_eq!(murmur3_32("", 1), 0x514e_28b7);
        assert_eq!(murmur3_32("hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_32("Hello, world!", 0), 0xc036_3e43);
        assert_eq!(
            murmur3_32("The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    /// Values printed by pymemcache 4.0's own `murmur3_32` and `RendezvousHash`.
    #[test]
    fn murmur3_and_placement_match_pymemcache() {
        assert_eq!(murmur3_32("hello", 1), 0xbb4a_bcad);
        // Non-ASCII: pymemcache hashes code points' low bytes, not UTF-8.
        assert_eq!(murmur3_32("zoë ’😀", 0), 0xf8dd_5dd9);
        assert_eq!(murmur3_32("zoë ’😀", 1), 0x8651_f8fa);
        assert_eq!(
            murmur3_32("127.0.0.1:11211-:1:django.contrib.sessions.cacheabc", 0),
            0xbba3_7e84
        );
        let nodes = ["127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213"];
        let placed = |key: &str| nodes[rendezvous_node(&nodes, key).unwrap()];
        let session = |n: u32| format!(":1:django.contrib.sessions.cache{n:032}");
        let expected = [2, 0, 0, 1, 2, 1, 2, 2];
        for (n, node) in expected.into_iter().enumerate() {
            assert_eq!(placed(&session(n as u32)), nodes[node], "session {n}");
        }
        assert_eq!(placed(":1:k"), "127.0.0.1:11212");
        assert_eq!(placed("shop:3:zoë"), "127.0.0.1:11213");
    }

    #[test]
    fn no_nodes_means_no_server() {
        assert_eq!(rendezvous_node::<&str>(&[], "k"), None);
        assert_eq!(rendezvous_node(&["a:1"], "k"), Some(0));
    }
}
