//! Drawing `top` with ratatui: the table, a status line, the filter prompt
//! and a group's detail. Colour only where [`crate::logging::colour`] allows
//! (NO_COLOR); without it, emphasis is reverse video and bold.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TRow, Table, TableState};

use super::model::{Row, View};
use super::plain::{self, Shows};
use crate::collect::GroupReport;
use crate::counters::{COUNTERS, Unit, sections};
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

    let layout = plain::layout();
    let header = TRow::new(layout.iter().map(|spec| {
        let text = if spec.sorts == Some(s.view.sort) {
            format!("{}{}", spec.header, if s.view.reversed { "▲" } else { "▼" })
        } else {
            spec.header.clone()
        };
        Cell::from(text)
    }))
    .style(header_style(s.colour));
    // The group takes what the other columns leave, the workload about 24.
    let fixed: usize = layout
        .iter()
        .filter(|spec| !matches!(spec.shows, Shows::Group | Shows::Workload))
        .map(|spec| spec.width + 1)
        .sum();
    let group_width = (body.width as usize)
        .saturating_sub(fixed + 24)
        .clamp(16, 60);
    let rows = s.rows.iter().map(|r| {
        let mut c = plain::cells(r, tree, &layout);
        c[0] = plain::group_cell(r, tree, group_width);
        TRow::new(c.into_iter().zip(&layout).map(|(text, spec)| {
            let cell = Cell::from(text);
            match spec.shows {
                Shows::Total(col) if s.colour && col.alert && r.total(col) > 0 => {
                    cell.style(Style::new().fg(Color::Red))
                }
                _ => cell,
            }
        }))
    });
    let widths: Vec<Constraint> = layout
        .iter()
        .map(|spec| match spec.shows {
            Shows::Group => Constraint::Length(group_width as u16),
            Shows::Workload => Constraint::Min(10),
            _ => Constraint::Length(spec.width as u16),
        })
        .collect();
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
            "q quit  ↑↓ move  Enter detail  / filter  t tree  +/- depth  {} (or 1-{}) sort  r reverse   {}",
            sort_keys(),
            super::model::Column::all().len(),
            s.status
        )),
    };
    f.render_widget(Paragraph::new(foot_text), foot);

    if let Some(g) = s.detail {
        detail(f, g, body);
    }
}

/// Where the detail's lines of counters wrap.
const DETAIL_WIDTH: usize = 80;

/// `label` and `items` separated by commas, on as many lines as they need.
fn wrap(label: &str, items: impl Iterator<Item = String>, out: &mut Vec<String>) {
    let mut line = format!("{label:<10} ");
    let indent = line.chars().count();
    let mut empty = true;
    for item in items {
        if !empty && line.chars().count() + 2 + item.chars().count() > DETAIL_WIDTH {
            out.push(format!("{line},"));
            line = " ".repeat(indent);
            empty = true;
        }
        if !empty {
            line.push_str(", ");
        }
        line.push_str(&item);
        empty = false;
    }
    out.push(line);
}

/// The sort keys, as the foot line lists them.
fn sort_keys() -> String {
    super::model::Column::all()
        .iter()
        .map(|c| c.key().to_string())
        .collect::<Vec<_>>()
        .join(" ")
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
        format!("group      {}", crate::escape::Human(&g.group)),
        format!("cgroup id  {}", g.cgroup_id),
    ];
    let w = &g.workload;
    for (k, v) in [
        ("unit", &w.unit),
        ("runtime", &w.runtime),
        ("container", &w.container_id),
        ("name", &w.container_name),
        ("pod uid", &w.pod_uid),
        ("qos class", &w.qos_class),
    ] {
        if let Some(v) = v {
            l.push(format!("{k:<10} {}", crate::escape::Human(v)));
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
    // Every counter, by section, as `stats --json` has them.
    for section in sections() {
        l.push(String::new());
        let items = COUNTERS.iter().filter(|d| d.json.0 == section).map(|d| {
            let v = g.counts[d.counter];
            match d.unit {
                Unit::Bytes => format!("{} {}", d.json.1, human_bytes(v)),
                Unit::Count => format!("{} {v}", d.json.1),
            }
        });
        wrap(section, items, &mut l);
    }
    let mut top: Vec<(&String, &u64)> = g.syscalls_by_name.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if !top.is_empty() {
        l.push(String::new());
        l.push("syscalls most made:".into());
    }
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
