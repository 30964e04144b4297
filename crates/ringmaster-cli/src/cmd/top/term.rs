//! The terminal while `top` runs: raw mode, the alternate screen, the cursor
//! hidden — and always given back. [`Screen`] restores it when dropped (a normal
//! quit, an error returned through `?`), and a panic hook restores it before the
//! panic's message is printed, so the message lands on the normal screen and the
//! shell is usable afterwards.
use std::io::{self, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

/// The terminal in `top`'s mode; restored when dropped.
pub struct Screen {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Enters raw mode and the alternate screen, hides the cursor. A step that
    /// fails undoes those before it.
    pub fn enter() -> io::Result<Screen> {
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        // From here on, every way out restores: `Armed` restores when the rest fails.
        let armed = Armed;
        execute!(io::stdout(), EnterAlternateScreen, Hide)?;
        let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        std::mem::forget(armed);
        Ok(Screen { terminal })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Restores the terminal when dropped (only while [`Screen::enter`] runs).
struct Armed;

impl Drop for Armed {
    fn drop(&mut self) {
        restore();
    }
}

/// The terminal is in `top`'s mode (between [`Screen::enter`] and [`restore`]).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Leaves the alternate screen, shows the cursor, turns raw mode off; once, and
/// only when [`Screen::enter`] changed the terminal.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = io::stdout();
    let _ = execute!(out, LeaveAlternateScreen, Show);
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// Restores the terminal before the default hook prints a panic (once per
/// process).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
