//! The connections of a worker, in slots reused through a free list; each slot has a
//! generation, bumped when it is freed, so a completion of a former occupant is recognised.

use super::conn::Conn;
use evserver_platform::Token;

struct Slot {
    generation: u32,
    conn: Option<Box<Conn>>,
}

/// Every connection slot. A connection is taken out while a handler works on it and put back
/// after, so handlers own it without borrowing the table.
#[derive(Default)]
pub struct Slots {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Slots {
    /// A free slot and its generation, for a new connection.
    pub fn allocate(&mut self) -> (u32, u32) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot {
                generation: 0,
                conn: None,
            });
            (self.slots.len() - 1) as u32
        });
        (slot, self.slots[slot as usize].generation)
    }

    /// Takes out the connection `token` was issued for, if it still occupies its slot.
    pub fn take(&mut self, token: Token) -> Option<Box<Conn>> {
        self.take_of(token.slot(), token.generation())
    }

    /// Takes out the connection of `slot` if its generation is still `generation`.
    pub fn take_of(&mut self, slot: u32, generation: u32) -> Option<Box<Conn>> {
        let entry = self.slots.get_mut(slot as usize)?;
        if entry.generation != generation {
            return None;
        }
        entry.conn.take()
    }

    /// Takes out whatever connection occupies `slot`.
    pub fn take_at(&mut self, slot: usize) -> Option<Box<Conn>> {
        self.slots.get_mut(slot)?.conn.take()
    }

    /// Puts a connection (back) in its slot.
    pub fn put(&mut self, slot: u32, conn: Box<Conn>) {
        self.slots[slot as usize].conn = Some(conn);
    }

    /// Frees `slot`: its generation moves on, so late completions of its former connection
    /// find nothing.
    pub fn free(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        entry.generation = Token::next_generation(entry.generation);
        entry.conn = None;
        self.free.push(slot);
    }

    /// The number of slots (occupied or not), for walks with `take_at`.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The connections in their slots.
    pub fn conns(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().filter_map(|s| s.conn.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_slot_is_reused_with_a_new_generation() {
        let mut slots = Slots::default();
        let (a, gen_a) = slots.allocate();
        let (b, _) = slots.allocate();
        assert_ne!(a, b);
        slots.free(a);
        let (c, gen_c) = slots.allocate();
        assert_eq!(c, a);
        assert_ne!(gen_c, gen_a);
        // A token of the former occupant finds nothing.
        assert!(slots.take(Token::new(a, gen_a, 1)).is_none());
    }
}
