//! The stage graph as an SVG drawing for the HTML report: stages in columns by depth (a
//! stage one column right of the deepest stage it uses), coloured by status, edges as
//! curves from what a stage uses to it.

use super::html::escape;

/// A stage to draw: its name, built-in, status and the indices of the stages it uses.
pub struct StageBox<'a> {
    pub name: &'a str,
    pub builtin: &'a str,
    pub status: &'a str,
    pub deps: Vec<usize>,
}

const W: f64 = 170.0;
const H: f64 = 40.0;
const COL: f64 = 220.0;
const ROW: f64 = 56.0;
const PAD: f64 = 16.0;

/// Fill colours by status (Okabe-Ito, lightened), the legend's order.
pub const STATUS_COLORS: [(&str, &str); 5] = [
    ("executed", "#b3e2d1"),
    ("cached", "#c6e5f8"),
    ("failed", "#f2c4a8"),
    ("skipped", "#e4e4e4"),
    ("not run", "#f4f4f4"),
];

/// The fill of a stage with this status (its legend colour).
pub fn fill(status: &str) -> &'static str {
    STATUS_COLORS.iter().find(|(s, _)| status.starts_with(s)).map_or("#ffffff", |(_, c)| c)
}

/// `boxes` in an order where each comes after the ones it uses.
pub fn draw(boxes: &[StageBox]) -> String {
    let mut depth = vec![0usize; boxes.len()];
    for i in 0..boxes.len() {
        depth[i] = boxes[i].deps.iter().filter(|&&d| d < i).map(|&d| depth[d] + 1).max().unwrap_or(0);
    }
    // Rows: column by column, each stage at the mean row of the stages it uses (sources in
    // execution order), which keeps most curves from crossing.
    let columns = depth.iter().max().map_or(0, |m| m + 1);
    let mut row_in_column = vec![0usize; boxes.len()];
    for c in 0..columns {
        let mut members: Vec<(f64, usize)> = (0..boxes.len())
            .filter(|&i| depth[i] == c)
            .map(|i| {
                let deps: Vec<usize> = boxes[i].deps.iter().copied().filter(|&d| d < i).collect();
                let center = if deps.is_empty() {
                    i as f64
                } else {
                    deps.iter().map(|&d| row_in_column[d] as f64).sum::<f64>() / deps.len() as f64
                };
                (center, i)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (row, (_, i)) in members.into_iter().enumerate() {
            row_in_column[i] = row;
        }
    }
    let filled: Vec<usize> = (0..columns).map(|c| depth.iter().filter(|&&d| d == c).count()).collect();
    let at = |i: usize| (PAD + depth[i] as f64 * COL, PAD + row_in_column[i] as f64 * ROW);
    let width = PAD * 2.0 + (filled.len().max(1) - 1) as f64 * COL + W;
    let height = PAD * 2.0 + (filled.iter().max().copied().unwrap_or(1).max(1) - 1) as f64 * ROW + H;
    let mut svg = format!(
        "<svg class=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n"
    );
    for (i, b) in boxes.iter().enumerate() {
        for &d in b.deps.iter().filter(|&&d| d < i) {
            let ((x0, y0), (x1, y1)) = (at(d), at(i));
            let (sx, sy, ex, ey) = (x0 + W, y0 + H / 2.0, x1, y1 + H / 2.0);
            let mid = (sx + ex) / 2.0;
            svg += &format!(
                "<path d=\"M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}\" fill=\"none\" stroke=\"#777\" \
                 stroke-width=\"1.2\" marker-end=\"url(#arrow)\"/>\n"
            );
        }
    }
    for (i, b) in boxes.iter().enumerate() {
        let (x, y) = at(i);
        let short = |s: &str, n: usize| {
            if s.chars().count() > n { s.chars().take(n - 1).collect::<String>() + "…" } else { s.to_string() }
        };
        svg += &format!(
            "<a href=\"#stage-{id}\"><g class=\"stage\"><title>{name}: {builtin} ({status})</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"6\" fill=\"{fill}\" stroke=\"#555\"/>\
             <text x=\"{tx}\" y=\"{ty}\" font-size=\"13\" text-anchor=\"middle\">{label}</text>\
             <text x=\"{tx}\" y=\"{by}\" font-size=\"10\" fill=\"#444\" text-anchor=\"middle\">{sub}</text></g></a>\n",
            id = escape(b.name),
            name = escape(b.name),
            builtin = escape(b.builtin),
            status = escape(b.status),
            fill = fill(b.status),
            tx = x + W / 2.0,
            ty = y + 17.0,
            by = y + 32.0,
            label = escape(&short(b.name, 22)),
            sub = escape(&short(&format!("{} · {}", b.builtin, b.status), 30)),
        );
    }
    svg + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_sit_right_of_what_they_use_and_are_coloured_by_status() {
        let boxes = [
            StageBox { name: "data", builtin: "toy2d", status: "executed", deps: vec![] },
            StageBox { name: "fit", builtin: "train", status: "cached", deps: vec![0] },
            StageBox { name: "plot", builtin: "scatter_plot", status: "failed", deps: vec![0] },
            StageBox { name: "score", builtin: "evaluate", status: "skipped", deps: vec![1, 0] },
        ];
        let svg = draw(&boxes);
        assert_eq!(svg.matches("<rect").count(), 4);
        assert_eq!(svg.matches("marker-end").count(), 4, "one curve per use");
        // data in column 0; fit and plot in column 1 (rows 0 and 1); score in column 2.
        assert!(svg.contains(&format!("<rect x=\"{PAD}\" y=\"{PAD}\"")));
        assert!(svg.contains(&format!("<rect x=\"{}\" y=\"{}\"", PAD + COL, PAD + ROW)));
        assert!(svg.contains(&format!("<rect x=\"{}\" y=\"{PAD}\"", PAD + 2.0 * COL)));
        for (status, color) in &STATUS_COLORS[..4] {
            assert!(svg.contains(color), "{status}");
        }
    }

    /// A stage sits level with what it uses: listed second but using the first source, it
    /// takes the first row, so the two curves do not cross.
    #[test]
    fn rows_follow_the_stages_used() {
        let boxes = [
            StageBox { name: "a", builtin: "toy2d", status: "executed", deps: vec![] },
            StageBox { name: "b", builtin: "toy2d", status: "executed", deps: vec![] },
            StageBox { name: "uses_b", builtin: "train", status: "executed", deps: vec![1] },
            StageBox { name: "uses_a", builtin: "train", status: "executed", deps: vec![0] },
        ];
        let svg = draw(&boxes);
        let y_of = |name: &str| {
            let at = svg.find(&format!("<title>{name}:")).unwrap();
            let rect = &svg[at..];
            let y = rect.split("y=\"").nth(1).unwrap();
            y.split('"').next().unwrap().parse::<f64>().unwrap()
        };
        assert_eq!(y_of("uses_a"), y_of("a"));
        assert_eq!(y_of("uses_b"), y_of("b"));
    }
}
