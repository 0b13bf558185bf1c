//! The one comparison table.

use crate::stats::{Better, Figure, Runs, Unit, advantage, clearly_apart};

/// Who a row compares us with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Django's `signing.dumps`/`loads` in CPython.
    Django,
    /// tower-sessions with its matching store.
    TowerSessions,
    /// actix-session with its matching store (the actix rows; its figures are in the
    /// tower-sessions column, `Row::tower`).
    ActixSession,
    /// Our own round trip under the `last_write_wins` concurrency policy (the `merge` rows, whose
    /// djsession column is the same round trip under `merge`).
    LastWriteWins,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// `codec`, `store` or `http`.
    pub section: &'static str,
    /// What was measured (`encode 2 KB`, `Redis c=16`, ...).
    pub case: String,
    /// The unit of every figure in the row.
    pub unit: &'static str,
    /// How figures are printed.
    pub format: Unit,
    /// Whether larger figures are better.
    pub better: Better,
    /// Who the advantage column compares with.
    pub peer: Peer,
    /// djsession.
    pub ours: Runs,
    /// tower-sessions (for codec rows: its MessagePack record encoding, for information).
    pub tower: Option<Runs>,
    /// Django.
    pub django: Option<Runs>,
    /// djsession under the `last_write_wins` concurrency policy (the `merge` rows only).
    pub last_write_wins: Option<Runs>,
    /// The floor: what the machine does with no session library at all.
    pub floor: Option<Runs>,
}

impl Row {
    fn peer_runs(&self) -> Option<&Runs> {
        match self.peer {
            Peer::Django => self.django.as_ref(),
            Peer::TowerSessions | Peer::ActixSession => self.tower.as_ref(),
            Peer::LastWriteWins => self.last_write_wins.as_ref(),
        }
    }

    /// Whether we are worse than the peer beyond the spread of both.
    pub fn clear_loss(&self) -> bool {
        let Some(peer) = self.peer_runs() else {
            return false;
        };
        advantage(&self.ours, peer, self.better).is_some_and(|a| a < 1.0)
            && clearly_apart(&self.ours, peer)
    }
}

fn cell(runs: Option<&Runs>, format: Unit) -> String {
    match runs {
        Some(runs) if runs.len() > 0 => Figure::new(runs.clone(), format).to_string(),
        _ => "–".to_owned(),
    }
}

/// A second floor for some rows: the bare floor plus the work a complete implementation cannot
/// skip either (the JSON, with the fastest Rust library: writing it to encode, parsing it to
/// decode).
#[derive(Debug, Clone)]
pub struct JsonFloor {
    /// The row it belongs to: its `section`, `case` and `unit`.
    pub section: &'static str,
    /// As [`Row::case`].
    pub case: String,
    /// As [`Row::unit`].
    pub unit: &'static str,
    /// The figures.
    pub runs: Runs,
}

/// The table as Markdown (it reads as plain text in a terminal too). `json_floors` fills the
/// `floor+JSON` column of the rows they name; other rows show a dash there.
pub fn render(rows: &[Row], json_floors: &[JsonFloor]) -> String {
    let header = [
        "what",
        "case",
        "unit",
        "djsession",
        "tower-sessions / actix-session",
        "Django 5.2",
        "last_write_wins",
        "floor",
        "floor+JSON",
        "us vs peer",
        "% of floor",
        "% of floor+JSON",
    ];
    let mut lines = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for row in rows {
        let vs_peer = row
            .peer_runs()
            .and_then(|peer| advantage(&row.ours, peer, row.better))
            .map_or("–".to_owned(), |a| {
                let peer = match row.peer {
                    Peer::Django => "Django",
                    Peer::TowerSessions => "t-s",
                    Peer::ActixSession => "a-s",
                    Peer::LastWriteWins => "lww",
                };
                let mark = if row.clear_loss() { " (loss)" } else { "" };
                format!("{a:.2}× {peer}{mark}")
            });
        let of_floor = row
            .floor
            .as_ref()
            .and_then(|floor| advantage(&row.ours, floor, row.better))
            .map_or("–".to_owned(), |a| format!("{:.0}%", a * 100.0));
        let json_floor = json_floors
            .iter()
            .find(|p| p.section == row.section && p.case == row.case && p.unit == row.unit)
            .map(|p| &p.runs);
        let of_json_floor = json_floor
            .and_then(|floor| advantage(&row.ours, floor, row.better))
            .map_or("–".to_owned(), |a| format!("{:.0}%", a * 100.0));
        lines.push(vec![
            row.section.to_owned(),
            row.case.clone(),
            row.unit.to_owned(),
            cell(Some(&row.ours), row.format),
            cell(row.tower.as_ref(), row.format),
            cell(row.django.as_ref(), row.format),
            cell(row.last_write_wins.as_ref(), row.format),
            cell(row.floor.as_ref(), row.format),
            cell(json_floor, row.format),
            vs_peer,
            of_floor,
            of_json_floor,
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (n, line) in lines.iter().enumerate() {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        out.push_str(&format!("| {} |\n", padded.join(" | ")));
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(values: &[f64]) -> Runs {
        values.iter().copied().collect()
    }

    fn row(ours: &[f64], tower: &[f64]) -> Row {
        Row {
            section: "store",
            case: "memory c=1".into(),
            unit: "rt/s",
            format: Unit::PerSecond,
            better: Better::Higher,
            peer: Peer::TowerSessions,
            ours: runs(ours),
            tower: Some(runs(tower)),
            django: None,
            last_write_wins: None,
            floor: Some(runs(&[4000.0])),
        }
    }

    #[test]
    fn a_loss_needs_the_runs_apart() {
        assert!(row(&[900.0, 950.0], &[1000.0, 1100.0]).clear_loss());
        assert!(!row(&[900.0, 1050.0], &[1000.0, 1100.0]).clear_loss());
        assert!(!row(&[1200.0, 1300.0], &[1000.0, 1100.0]).clear_loss());
    }

    #[test]
    fn rendered_rows_show_ratio_and_floor_share() {
        let table = render(&[row(&[2000.0], &[1000.0])], &[]);
        assert!(table.contains("2.00× t-s"), "{table}");
        assert!(table.contains("50%"), "{table}");
        assert!(
            table.contains("| –"),
            "the missing Django figure prints as a dash: {table}"
        );
    }

    #[test]
    fn a_json_floor_fills_its_own_row_only() {
        let rows = [row(&[2000.0], &[1000.0]), {
            let mut other = row(&[3000.0], &[1000.0]);
            other.case = "memory c=16".into();
            other
        }];
        let floors = [JsonFloor {
            section: "store",
            case: "memory c=16".into(),
            unit: "rt/s",
            runs: runs(&[3750.0]),
        }];
        let table = render(&rows, &floors);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].contains("floor+JSON"), "{table}");
        let last_cell = |line: &str| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            cells[cells.len() - 2].to_owned()
        };
        assert_eq!(last_cell(lines[2]), "–", "{table}");
        assert!(lines[3].contains("3.75k"), "{table}");
        assert_eq!(last_cell(lines[3]), "80%", "{table}");
    }
}
