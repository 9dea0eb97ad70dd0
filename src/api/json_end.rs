//! Whether a tool call's streamed arguments are complete: the stream converters keep a call's
//! block or item open until then, so a host that interleaves parallel calls loses nothing.

/// Whether streamed JSON text has ended: the first value, an object or array, closed.
#[derive(Debug, Default)]
pub struct JsonEnd {
    depth: u32,
    in_string: bool,
    escaped: bool,
    started: bool,
    pub done: bool,
}

impl JsonEnd {
    pub fn feed(&mut self, text: &str) {
        for &b in text.as_bytes() {
            if self.done {
                return;
            }
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.started = true;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.done = self.started && self.depth == 0;
                }
                _ => {}
            }
        }
    }
}
