//! `enforcer top`: a live, sortable table of groups read from the pinned maps
//! (ratatui + crossterm), and its plain form for pipes and `--once`.
//!
//! It reads what the kernel counts, not the agent: it works while an agent
//! runs, after one stopped (the counts stay pinned), and over SSH. The
//! embedded default (`enforcer` with no arguments) runs the observe agent on
//! another thread and shows this view.

mod model;
mod plain;
mod source;
mod ui;

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::widgets::TableState;

pub use model::{Column, Row, View, rows};
pub use plain::table as plain_table;
pub use source::{Source, SourceError};
pub use ui::detail_lines;

use crate::collect::GroupReport;

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("drawing on the terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// The interactive view's state between frames.
struct App {
    view: View,
    groups: Vec<GroupReport>,
    rows: Vec<Row>,
    state: TableState,
    /// The selected group, kept across refreshes and re-sorts.
    selected: Option<String>,
    editing: Option<String>,
    detail: bool,
    status: String,
    /// Depth the tree view returns to when toggled on.
    last_depth: usize,
    quit: bool,
}

impl App {
    fn new(view: View) -> Self {
        App {
            last_depth: if view.tree_depth > 0 {
                view.tree_depth
            } else {
                3
            },
            view,
            groups: Vec::new(),
            rows: Vec::new(),
            state: TableState::default(),
            selected: None,
            editing: None,
            detail: false,
            status: String::new(),
            quit: false,
        }
    }

    fn refresh_rows(&mut self) {
        self.rows = rows(&self.groups, &self.view);
        let i = self
            .selected
            .as_ref()
            .and_then(|g| self.rows.iter().position(|r| &r.group == g))
            .unwrap_or(0);
        if self.rows.is_empty() {
            self.state.select(None);
        } else {
            let i = i.min(self.rows.len() - 1);
            self.state.select(Some(i));
            self.selected = Some(self.rows[i].group.clone());
        }
    }

    fn move_by(&mut self, delta: isize) {
        if self.rows.is_empty() {
            return;
        }
        let i = self.state.selected().unwrap_or(0) as isize + delta;
        let i = i.clamp(0, self.rows.len() as isize - 1) as usize;
        self.state.select(Some(i));
        self.selected = Some(self.rows[i].group.clone());
    }

    fn key(&mut self, k: KeyEvent) {
        if k.kind == KeyEventKind::Release {
            return;
        }
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if let Some(text) = &mut self.editing {
            match k.code {
                KeyCode::Enter => self.editing = None,
                KeyCode::Esc => {
                    self.editing = None;
                    self.view.filter.clear();
                }
                KeyCode::Backspace => {
                    text.pop();
                    self.view.filter = text.clone();
                }
                KeyCode::Char(c) => {
                    text.push(c);
                    self.view.filter = text.clone();
                }
                _ => {}
            }
            self.refresh_rows();
            return;
        }
        if self.detail {
            if matches!(k.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) {
                self.detail = false;
            }
            return;
        }
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Esc => self.view.filter.clear(),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-20),
            KeyCode::PageDown => self.move_by(20),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX / 2),
            KeyCode::Enter => self.detail = !self.rows.is_empty(),
            KeyCode::Char('/') => self.editing = Some(self.view.filter.clone()),
            KeyCode::Char('t') => {
                self.view.tree_depth = if self.view.tree_depth == 0 {
                    self.last_depth
                } else {
                    0
                };
            }
            KeyCode::Char('+') => {
                self.view.tree_depth = (self.view.tree_depth + 1).min(32);
                self.last_depth = self.view.tree_depth;
            }
            KeyCode::Char('-') => {
                self.view.tree_depth = self.view.tree_depth.saturating_sub(1);
                if self.view.tree_depth > 0 {
                    self.last_depth = self.view.tree_depth;
                }
            }
            KeyCode::Char('r') => self.view.reversed = !self.view.reversed,
            KeyCode::Char('s') => {
                let all = Column::all();
                let i = all.iter().position(|c| *c == self.view.sort).unwrap_or(0);
                if let Some(next) = all.get((i + 1) % all.len()) {
                    self.view.sort = *next;
                }
            }
            KeyCode::Char(c) => {
                if let Some(col) = Column::from_key(c) {
                    if col == self.view.sort {
                        self.view.reversed = !self.view.reversed;
                    } else {
                        self.view.sort = col;
                        self.view.reversed = false;
                    }
                }
            }
            _ => {}
        }
        self.refresh_rows();
    }

    fn detail_report(&self) -> Option<GroupReport> {
        let sel = self.selected.as_ref()?;
        Some(
            self.groups
                .iter()
                .find(|g| &g.group == sel)
                .cloned()
                .unwrap_or_else(|| GroupReport::empty(sel)),
        )
    }
}

/// Puts the terminal back however the view ends (also on an error).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = ratatui::try_restore();
        crate::logging::release();
    }
}

/// The full-screen view until `q` (or until `ended()` says the embedded
/// agent stopped). Reads every `interval`.
pub fn interactive(
    source: &mut Source,
    interval: Duration,
    view: View,
    ended: &dyn Fn() -> bool,
) -> Result<(), TopError> {
    crate::logging::hold();
    let _restore = Restore;
    let mut terminal = ratatui::try_init()?;
    let colour = crate::logging::colour(true);
    let mut app = App::new(view);
    let mut next = Instant::now();
    while !app.quit && !ended() {
        if Instant::now() >= next {
            match source.sample() {
                Ok(g) => {
                    app.status = format!(
                        "{} groups counted (pins: {})",
                        g.len(),
                        source.pin_dir().display()
                    );
                    app.groups = g;
                }
                Err(e) if e.is_not_running() => {
                    app.status = format!(
                        "waiting for counters: nothing pinned in {} yet (is an agent starting? `enforcer run` starts one)",
                        source.pin_dir().display()
                    );
                }
                Err(e) => app.status = e.to_string(),
            }
            app.refresh_rows();
            next = Instant::now() + interval;
        }
        let detail = if app.detail {
            app.detail_report()
        } else {
            None
        };
        terminal.draw(|f| {
            ui::draw(
                f,
                ui::Screen {
                    rows: &app.rows,
                    view: &app.view,
                    state: &mut app.state,
                    status: &app.status,
                    editing: app.editing.as_deref(),
                    detail: detail.as_ref(),
                    colour,
                },
            )
        })?;
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(250));
        if event::poll(wait)?
            && let Event::Key(k) = event::read()?
        {
            app.key(k);
        }
    }
    terminal.show_cursor()?;
    Ok(())
}

/// One sample for `--once`: two reads `interval` apart when `rates` is
/// asked for (the plain table shows rates), else one.
pub fn once(
    source: &mut Source,
    rates: Option<Duration>,
    view: &View,
) -> Result<Vec<Row>, TopError> {
    let mut groups = source.sample()?;
    if let Some(d) = rates {
        std::thread::sleep(d);
        groups = source.sample()?;
    }
    Ok(rows(&groups, view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventState;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent {
            code: c,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    #[test]
    fn keys_sort_filter_tree_and_quit() {
        let mut app = App::new(View::default());
        let mut a = GroupReport::empty("a");
        a.counts[crate::counters::Counter::EgressBytes] = 1;
        let mut b = GroupReport::empty("b/c");
        b.counts[crate::counters::Counter::EgressBytes] = 9;
        app.groups = vec![a, b];
        app.refresh_rows();
        assert_eq!(app.rows[0].group, "b/c");
        app.key(key(KeyCode::Char('n')));
        assert_eq!(app.rows[0].group, "a");
        app.key(key(KeyCode::Char('/')));
        for c in "b/".chars() {
            app.key(key(KeyCode::Char(c)));
        }
        app.key(key(KeyCode::Enter));
        assert_eq!(app.rows.len(), 1);
        app.key(key(KeyCode::Esc));
        app.key(key(KeyCode::Char('t')));
        assert_eq!(app.view.tree_depth, 3);
        app.key(key(KeyCode::Down));
        app.key(key(KeyCode::Enter));
        assert!(app.detail);
        app.key(key(KeyCode::Char('q')));
        assert!(!app.detail && !app.quit, "q closes the detail first");
        app.key(key(KeyCode::Char('q')));
        assert!(app.quit);
    }
    #[test]
    fn plus_and_minus_change_the_depth_and_the_filter_finds_workloads() {
        let mut app = App::new(View::default());
        // The systemd driver writes a pod's UID with `_` in the path.
        let mut pod = GroupReport::empty("kubepods.slice/kubepods-pod6f1c2b3a_1d2e.slice");
        pod.workload = crate::collect::Workload {
            pod_uid: Some("6f1c2b3a-1d2e".into()),
            ..Default::default()
        };
        app.groups = vec![pod, GroupReport::empty("a/b/c/d")];
        app.refresh_rows();
        app.key(key(KeyCode::Char('t')));
        assert_eq!(app.view.tree_depth, 3);
        app.key(key(KeyCode::Char('+')));
        assert_eq!(app.view.tree_depth, 4);
        assert!(
            app.rows.iter().any(|r| r.group == "a/b/c/d"),
            "{:?}",
            app.rows
        );
        app.key(key(KeyCode::Char('-')));
        app.key(key(KeyCode::Char('-')));
        assert_eq!(app.view.tree_depth, 2);
        assert!(
            app.rows.iter().all(|r| r.group.split('/').count() <= 2),
            "{:?}",
            app.rows
        );
        app.key(key(KeyCode::Char('t')));
        assert_eq!(app.view.tree_depth, 0, "t toggles the tree off");
        // `/` matches a pod (unit, container) as well as a path.
        app.key(key(KeyCode::Char('/')));
        for c in "6f1c2b3a-1d2e".chars() {
            app.key(key(KeyCode::Char(c)));
        }
        app.key(key(KeyCode::Enter));
        let shown: Vec<&str> = app.rows.iter().map(|r| r.group.as_str()).collect();
        assert_eq!(shown, ["kubepods.slice/kubepods-pod6f1c2b3a_1d2e.slice"]);
    }
}
