//! A small server-rendered bar chart (SVG) for check-ins per hour or day: a pure function
//! from numbers to markup, so a page embeds it without scripts and a test reads it.

use super::xml::escape_attr;

const WIDTH: u32 = 480;
const HEIGHT: u32 = 120;
const MARGIN_TOP: u32 = 18;
const MARGIN_BOTTOM: u32 = 16;

/// Bars for `values` (oldest first) with an accessible title; `labels` go under the first,
/// middle and last bars. Every bar carries a `<title>` with its label and value.
pub fn bars_svg(title: &str, values: &[u32], labels: &[String]) -> String {
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    scaled(title, &format!("max {max}"), values, labels, max)
}

/// Bars for `values` as shares of `of` (a full bar is `of`), as `bars_svg` draws them.
pub fn share_svg(title: &str, values: &[u32], labels: &[String], of: u32) -> String {
    scaled(title, &format!("of {of}"), values, labels, of.max(1))
}

fn scaled(title: &str, scale: &str, values: &[u32], labels: &[String], max: u32) -> String {
    let n = values.len().max(1) as u32;
    let slot = WIDTH / n;
    let bar = slot.saturating_sub(2).max(1);
    let plot = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         aria-label=\"{t}\"><title>{t}</title>\
         <text x=\"0\" y=\"12\" font-size=\"11\">{t} ({scale})</text>",
        t = escape_attr(title)
    );
    for (i, v) in values.iter().enumerate() {
        let h = (u64::from(*v).min(u64::from(max)) * u64::from(plot) / u64::from(max)) as u32;
        let x = i as u32 * slot + 1;
        let y = MARGIN_TOP + plot - h;
        let label = labels.get(i).map(String::as_str).unwrap_or("");
        out.push_str(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h}\" fill=\"currentColor\">\
             <title>{}: {v}</title></rect>",
            escape_attr(label)
        ));
    }
    // The first label starts at its bar, the middle one is centred on it and the last one
    // ends with it, so none runs past the edges of the chart.
    let last = values.len().saturating_sub(1);
    for (i, anchor) in [(0, "start"), (last / 2, "middle"), (last, "end")] {
        if let Some(label) = labels.get(i) {
            let left = i as u32 * slot + 1;
            let x = match anchor {
                "start" => left,
                "middle" => left + bar / 2,
                _ => left + bar,
            };
            out.push_str(&format!(
                "<text x=\"{x}\" y=\"{}\" font-size=\"10\" text-anchor=\"{anchor}\">{}</text>",
                HEIGHT - 3,
                escape_attr(label)
            ));
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_the_svg_is_well_formed() {
        let labels: Vec<String> = (0..24).map(|h| format!("{h:02}:00")).collect();
        let mut values = vec![0u32; 24];
        values[5] = 10;
        values[23] = 5;
        let svg = bars_svg("Check-ins <24 h>", &values, &labels);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed");
        let rects: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .collect();
        assert_eq!(rects.len(), 24);
        let height = |i: usize| -> u32 {
            rects[i]
                .attribute("height")
                .and_then(|h| h.parse().ok())
                .expect("height")
        };
        assert_eq!(height(5), HEIGHT - MARGIN_TOP - MARGIN_BOTTOM);
        assert_eq!(height(23), height(5) / 2);
        assert_eq!(height(0), 0);
        assert!(svg.contains("05:00: 10"));
        assert!(svg.contains("Check-ins &lt;24 h&gt;"));
        assert!(bars_svg("empty", &[], &[]).ends_with("</svg>"));
        let last = doc
            .descendants()
            .rfind(|n| n.has_tag_name("text"))
            .expect("last label");
        assert_eq!(
            last.attribute("text-anchor"),
            Some("end"),
            "ends inside the chart"
        );
        let x: u32 = last.attribute("x").and_then(|x| x.parse().ok()).expect("x");
        assert!(x <= WIDTH, "{x}");
    }
}
