//! Drawing `top` with ratatui: the table, a status line, the filter prompt
//! and a group's detail. Colour only where [`crate::logging::colour`] allows
//! (NO_COLOR); without it, emphasis is reverse video and bold.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TRow, Table, TableState};

use super::model::{Column, Row, View};
use super::plain::{self, HEADERS};
use crate::collect::GroupReport;
use crate::report::human_bytes;

/// Everything the screen shows.
pub(super) struct Screen<'a> {
    pub rows: &'a [Row],
    pub view: &'a View,
    pub state: &'a mut TableState,
    /// A line under the table: where the numbers come from, or why there
    /// are none.
    pub status: &'a str,
    /// The filter being typed (`/`), if any.
    pub editing: Option<&'a str>,
    /// The group whose detail is open.
    pub detail: Option<&'a GroupReport>,
    pub colour: bool,
}

fn header_style(colour: bool) -> Style {
    if colour {
        Style::new()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }
}

fn column_of(i: usize) -> Option<Column> {
    match i {
        0 => Some(Column::Group),
        1 | 3 => Some(Column::Egress),
        2 | 4 => Some(Column::Ingress),
        5 => Some(Column::Syscalls),
        6 => Some(Column::Memory),
        7 => Some(Column::Cpu),
        8 => Some(Column::Denied),
        9 => Some(Column::Dropped),
        _ => None,
    }
}

pub(super) fn draw(f: &mut Frame<'_>, s: Screen<'_>) {
    let [top, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let tree = s.view.tree_depth > 0;
    let title = format!(
        "enforcer top: {} groups, sorted by {}{}{}{}",
        s.rows.len(),
        s.view.sort.name(),
        if s.view.reversed { " (reversed)" } else { "" },
        if tree {
            format!(", tree depth {}", s.view.tree_depth)
        } else {
            String::new()
        },
        if s.view.filter.is_empty() {
            String::new()
        } else {
            format!(", filter \"{}\"", s.view.filter)
        },
    );
    f.render_widget(
        Paragraph::new(title).style(Style::new().add_modifier(Modifier::BOLD)),
        top,
    );

    let header = TRow::new(HEADERS.iter().enumerate().map(|(i, h)| {
        let sorted = column_of(i) == Some(s.view.sort) && matches!(i, 0 | 1 | 2 | 5..=9);
        let text = if sorted {
            format!("{h}{}", if s.view.reversed { "▲" } else { "▼" })
        } else {
            h.to_string()
        };
        Cell::from(text)
    }))
    .style(header_style(s.colour));
    // The fixed columns take 93 cells; the workload keeps about 24.
    let group_width = body.width.saturating_sub(93 + 24).clamp(16, 60) as usize;
    let rows = s.rows.iter().map(|r| {
        let mut c = plain::cells(r, tree);
        c[0] = plain::group_cell(r, tree, group_width);
        let alert = s.colour && (r.denied > 0 || r.dropped > 0);
        TRow::new(c.into_iter().enumerate().map(|(i, text)| {
            let cell = Cell::from(text);
            if alert && (i == 8 || i == 9) {
                cell.style(Style::new().fg(Color::Red))
            } else {
                cell
            }
        }))
    });
    let widths = [
        Constraint::Length(group_width as u16),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    f.render_stateful_widget(table, body, s.state);

    let foot_text = match s.editing {
        Some(text) => Line::from(vec![
            Span::styled("filter: ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(text.to_string()),
            Span::raw("▏ (Enter: keep, Esc: clear)"),
        ]),
        None => Line::from(format!(
            "q quit  ↑↓ move  Enter detail  / filter  t tree  +/- depth  n e i y m c d p (or 1-8) sort  r reverse   {}",
            s.status
        )),
    };
    f.render_widget(Paragraph::new(foot_text), foot);

    if let Some(g) = s.detail {
        detail(f, g, body);
    }
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// A group's detail: labels, top syscalls, denials, drops, limits and
/// budget left.
pub fn detail_lines(g: &GroupReport) -> Vec<String> {
    let mut l = vec![
        format!("group      {}", g.group),
        format!("cgroup id  {}", g.cgroup_id),
    ];
    let w = &g.workload;
    for (k, v) in [
        ("unit", &w.unit),
        ("runtime", &w.runtime),
        ("container", &w.container_id),
        ("pod uid", &w.pod_uid),
        ("qos class", &w.qos_class),
    ] {
        if let Some(v) = v {
            l.push(format!("{k:<10} {v}"));
        }
    }
    l.push(String::new());
    l.push(format!(
        "memory     {} of {}, {} OOM kills; CPU {:.1} s",
        human_bytes(g.memory.usage_bytes),
        if g.memory.limit_bytes > 0 {
            human_bytes(g.memory.limit_bytes)
        } else {
            "no limit".into()
        },
        g.memory.oom_kills,
        g.cpu.usage_usec as f64 / 1e6
    ));
    if g.limits.is_empty() {
        l.push("network    no rate limit or budget".into());
    }
    for lim in &g.limits {
        let mut t = format!("{:<10} ", lim.direction);
        if let Some(r) = lim.rate_bytes_per_sec {
            t.push_str(&format!("rate {}/s ", human_bytes(r)));
        }
        if let Some(b) = &lim.budget {
            t.push_str(&format!(
                "budget {} per {:.0} s: {} left ({:.0}%)",
                human_bytes(b.bytes),
                b.window_secs,
                human_bytes(b.remaining_bytes),
                100.0 * b.remaining_bytes as f64 / b.bytes.max(1) as f64
            ));
        }
        l.push(t);
    }
    let e = &g.enforcement;
    l.push(String::new());
    l.push(format!(
        "denied     connect {}, bind {}, sendmsg {}, syscalls (LSM) {}; killed {}; logged {}",
        e.connect_denied,
        e.bind_denied,
        e.sendmsg_denied,
        e.syscalls_denied,
        e.syscalls_killed,
        e.syscalls_logged
    ));
    l.push(format!(
        "dropped    egress {} packets ({}), ingress {} packets ({}); events lost {}",
        e.egress_dropped_packets,
        human_bytes(e.egress_dropped_bytes),
        e.ingress_dropped_packets,
        human_bytes(e.ingress_dropped_bytes),
        e.events_lost
    ));
    l.push(String::new());
    let mut top: Vec<(&String, &u64)> = g.syscalls.by_name.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    l.push(format!(
        "syscalls   {} in all; most made:",
        g.syscalls.total
    ));
    for (name, n) in top.into_iter().take(10) {
        l.push(format!("  {name:<18} {n:>12}"));
    }
    l
}

fn detail(f: &mut Frame<'_>, g: &GroupReport, area: Rect) {
    let lines = detail_lines(g);
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(20) as u16 + 4;
    let r = centered(area, width, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines.into_iter().map(Line::from).collect::<Vec<_>>()).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" detail (Esc or Enter closes) "),
        ),
        r,
    );
}
