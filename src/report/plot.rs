//! Plots of a sweep document (`contention sweep --output s.json`): a 2x2 figure of throughput,
//! p99 latency, abort rate and anomaly rate against the varied parameter, one line per
//! `strategy @ isolation`, with min–max error bars when each point was repeated.
//!
//! SVG or PNG, chosen by the output's extension. Text is laid out (and, for PNG, drawn) with the
//! DejaVu Sans font compiled into the binary, so no system fonts are needed at run time.
//!
//! Rendering only: this module reads the typed sweep ([`SweepReport`]) and must not run anything.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::sweep::{Point as SweepPoint, Summary, SweepReport, Swept};

/// Size of the figure in pixels (SVG user units): 16:10, readable on a slide.
const SIZE: (u32, u32) = (1600, 1000);
const LEGEND_WIDTH: u32 = 350;
const HEADER_HEIGHT: u32 = 96;
const FONT: &str = "sans-serif";

/// Tableau 10: distinguishable, and still distinguishable in greyscale by marker.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// What each panel shows: (title, axis label, the measure of a point, scale to the unit shown).
type Metric = (&'static str, &'static str, fn(&SweepPoint) -> Summary, f64);
const METRICS: [Metric; 4] = [
    ("Throughput", "committed ops/s", |p| p.ops_per_s, 1.0),
    ("p99 latency", "ms", |p| p.p99_ms, 1.0),
    (
        "Abort rate",
        "% of attempts aborted",
        |p| p.abort_rate,
        100.0,
    ),
    (
        "Anomaly rate",
        "anomalies per 1,000 committed ops",
        |p| p.anomaly_rate,
        1.0,
    ),
];

static FONTS: Once = Once::new();

const REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// Registers the bundled font with plotters (once per process).
fn register_fonts() {
    FONTS.call_once(|| {
        // The bytes are compiled in and known to be valid TrueType: failure is a build defect.
        plotters::style::register_font(FONT, FontStyle::Normal, REGULAR)
            .unwrap_or_else(|_| panic!("bundled DejaVuSans.ttf is a valid font"));
        plotters::style::register_font(FONT, FontStyle::Bold, BOLD)
            .unwrap_or_else(|_| panic!("bundled DejaVuSans-Bold.ttf is a valid font"));
    });
}

/// Draws the sweep's figure into `path`: SVG for `.svg`, PNG for `.png`.
pub fn render(sweep: &SweepReport, path: &Path) -> anyhow::Result<()> {
    let figure = Figure::from_sweep(sweep)?;
    register_fonts();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            figure.draw(&root)?;
            root.present().map_err(plot_error)?;
        }
        Some("png") => {
            let root = Glyphs::new(BitMapBackend::new(path, SIZE)).into_drawing_area();
            figure.draw(&root)?;
            root.present().map_err(plot_error)?;
        }
        _ => bail!(
            "{}: the plot's file name must end in .svg or .png",
            path.display()
        ),
    }
    Ok(())
}

/// The sweep's figure as an SVG document (for inlining into HTML).
pub fn render_svg(sweep: &SweepReport) -> anyhow::Result<String> {
    let figure = Figure::from_sweep(sweep)?;
    register_fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The bundled bold face (`FontDesc::style` would keep the regular face's glyphs).
fn bold(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FONT), size, FontStyle::Bold)
}

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e:?}")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    /// Powers of two (clients 1, 2, 4, ... 64): coordinate = log2(value).
    Log2,
    /// Other positive numbers spanning more than an order of magnitude: coordinate = log10.
    Log10,
    /// Other numbers: coordinate = value.
    Linear,
    /// Strings (or a mix): coordinate = position in `values`.
    Categorical,
}

#[derive(Debug, Clone, Copy)]
struct Stat {
    mean: f64,
    min: f64,
    max: f64,
}

#[derive(Debug)]
struct Point {
    x: f64,
    metrics: [Option<Stat>; 4],
}

#[derive(Debug)]
struct Series {
    label: String,
    color: RGBColor,
    marker: usize,
    points: Vec<Point>,
}

/// A sweep document, reduced to what the figure draws.
#[derive(Debug)]
struct Figure {
    title: String,
    subtitle: String,
    vary: String,
    scale: Scale,
    /// Tick positions and their labels, one per swept value.
    ticks: Vec<(f64, String)>,
    series: Vec<Series>,
    /// More than one run per point: draw min–max bars.
    bars: bool,
}

/// A swept value as a tick label (whole floats without decimals).
fn value_label(v: &Swept) -> String {
    match v {
        Swept::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => other.to_string(),
    }
}

/// All positive and the largest at least 20 times the smallest: a log axis reads better.
fn spans_decades(ns: &[f64]) -> bool {
    let lo = ns.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ns.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi / lo >= 20.0
}

/// Blanks the labels of ticks too close to the previous labelled one (less than 1/16 of the
/// axis apart), so that labels never overprint each other.
fn unclutter(ticks: &mut [(f64, String)]) {
    let mut sorted: Vec<usize> = (0..ticks.len()).collect();
    sorted.sort_by(|&a, &b| ticks[a].0.total_cmp(&ticks[b].0));
    let (Some(&first), Some(&last)) = (sorted.first(), sorted.last()) else {
        return;
    };
    let min_gap = (ticks[last].0 - ticks[first].0) / 16.0;
    let mut previous: Option<f64> = None;
    for i in sorted {
        let x = ticks[i].0;
        match previous {
            Some(p) if x - p < min_gap => ticks[i].1.clear(),
            _ => previous = Some(x),
        }
    }
}

fn is_power_of_two(f: f64) -> bool {
    f >= 1.0 && f.fract() == 0.0 && (f as u64).is_power_of_two()
}

fn stat(s: Summary, scale: f64) -> Option<Stat> {
    if !s.mean.is_finite() {
        return None;
    }
    let or_mean = |x: f64| if x.is_finite() { x } else { s.mean };
    Some(Stat {
        mean: s.mean * scale,
        min: or_mean(s.min) * scale,
        max: or_mean(s.max) * scale,
    })
}

/// `PostgreSQL 15.20 on x86_64-pc-linux-gnu, compiled by ...` -> `PostgreSQL 15.20`.
fn short_version(v: &str) -> String {
    v.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

impl Figure {
    fn from_sweep(doc: &SweepReport) -> anyhow::Result<Figure> {
        let points = &doc.points;
        if points.is_empty() {
            bail!("the sweep has no points to plot");
        }
        let vary = doc.vary.clone();

        // The swept values, in the document's order (then any others in order of appearance).
        let mut values: Vec<Swept> = doc.values.clone();
        for p in points {
            if !values.iter().any(|w| w.same(&p.value)) {
                values.push(p.value.clone());
            }
        }
        let numbers: Option<Vec<f64>> = values.iter().map(Swept::as_f64).collect();
        let scale = match &numbers {
            Some(ns) if ns.len() >= 2 && ns.iter().all(|&f| is_power_of_two(f)) => Scale::Log2,
            Some(ns) if spans_decades(ns) => Scale::Log10,
            Some(_) => Scale::Linear,
            None => Scale::Categorical,
        };
        let coordinate = |i: usize| -> f64 {
            match (scale, &numbers) {
                (Scale::Log2, Some(ns)) => ns[i].log2(),
                (Scale::Log10, Some(ns)) => ns[i].log10(),
                (Scale::Linear, Some(ns)) => ns[i],
                _ => i as f64,
            }
        };
        let mut ticks: Vec<(f64, String)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (coordinate(i), value_label(v)))
            .collect();
        unclutter(&mut ticks);

        // Series in order of first appearance; a colour each while the palette lasts (else by
        // strategy), marker by isolation.
        let several = points.iter().any(|p| p.engine != points[0].engine);
        let mut strategies: Vec<String> = Vec::new();
        let mut levels: Vec<String> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        for p in points {
            let name = p.series(several);
            if !strategies.contains(&name) {
                strategies.push(name.clone());
            }
            let level = p.isolation.to_string();
            let label = format!("{name} @ {level}");
            if !levels.contains(&level) {
                levels.push(level);
            }
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        let mut series: Vec<Series> = Vec::new();
        for p in points {
            let name = p.series(several);
            let level = p.isolation.to_string();
            let label = format!("{name} @ {level}");
            let Some(idx) = values.iter().position(|w| w.same(&p.value)) else {
                continue;
            };
            let metrics = METRICS.map(|(_, _, measure, k)| stat(measure(p), k));
            let point = Point {
                x: coordinate(idx),
                metrics,
            };
            match series.iter_mut().find(|x| x.label == label) {
                Some(x) => x.points.push(point),
                None => {
                    let si = strategies.iter().position(|x| *x == name).unwrap_or(0);
                    let li = levels.iter().position(|x| *x == level).unwrap_or(0);
                    let ci = if labels.len() <= PALETTE.len() {
                        series.len()
                    } else {
                        si
                    };
                    series.push(Series {
                        label,
                        color: PALETTE[ci % PALETTE.len()],
                        marker: li,
                        points: vec![point],
                    });
                }
            }
        }
        for s in &mut series {
            s.points.sort_by(|a, b| a.x.total_cmp(&b.x));
        }

        let repeat = doc.repeat.max(1);
        let title = format!("{}: varying {vary}", doc.scenario.name);
        let mut parts = vec![format!(
            "{vary} = {}",
            ticks
                .iter()
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )];
        parts.push(if repeat > 1 {
            format!("{repeat} runs per point (line: mean, bars: min–max)")
        } else {
            "1 run per point".to_string()
        });
        let st = &doc.settings;
        let duration = |d| humantime::format_duration(d).to_string();
        let shown: Vec<String> = [
            ("clients", Some(st.clients.to_string())),
            ("duration", Some(duration(st.duration))),
            ("operations", st.operations.map(|n| n.to_string())),
            ("think", Some(duration(st.think))),
            ("seed", Some(st.seed.to_string())),
        ]
        .into_iter()
        .filter(|(k, _)| *k != vary)
        .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
        .collect();
        parts.push(shown.join(", "));
        parts.push(short_version(&doc.server.version));
        Ok(Figure {
            title,
            subtitle: parts.join("  ·  "),
            vary,
            scale,
            ticks,
            series,
            bars: repeat > 1,
        })
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let (header, body) = root.split_vertically(HEADER_HEIGHT);
        header
            .draw(&Text::new(self.title.clone(), (24, 16), bold(34.0)))
            .map_err(plot_error)?;
        header
            .draw(&Text::new(
                self.subtitle.clone(),
                (24, 60),
                (FONT, 19).into_font().color(&RGBColor(80, 80, 80)),
            ))
            .map_err(plot_error)?;
        let (charts, legend) = body.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        for (i, area) in charts.split_evenly((2, 2)).iter().enumerate() {
            self.panel(area, i)?;
        }
        self.legend(&legend)?;
        Ok(())
    }

    fn x_range(&self) -> (f64, f64) {
        let lo = self.ticks.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
        let hi = self
            .ticks
            .iter()
            .map(|t| t.0)
            .fold(f64::NEG_INFINITY, f64::max);
        let pad = match self.scale {
            _ if hi <= lo => 0.5,
            Scale::Categorical => 0.4,
            _ => (hi - lo) * 0.06,
        };
        (lo - pad, hi + pad)
    }

    fn x_desc(&self) -> String {
        match self.scale {
            Scale::Log2 => format!("{} (log₂ scale)", self.vary),
            Scale::Log10 => format!("{} (log scale)", self.vary),
            _ => self.vary.clone(),
        }
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        metric: usize,
    ) -> anyhow::Result<()> {
        let (title, unit, _, _) = METRICS[metric];
        let top = self
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter_map(|p| p.metrics[metric])
            .map(|s| if self.bars { s.max.max(s.mean) } else { s.mean })
            .fold(0.0_f64, f64::max);
        let y_max = if top > 0.0 { top * 1.12 } else { 1.0 };
        let (x_lo, x_hi) = self.x_range();
        // At most ~12 labelled ticks on the x axis.
        let step = self.ticks.len().div_ceil(12).max(1);
        let x_axis = XAxis {
            lo: x_lo,
            hi: x_hi,
            ticks: self.ticks.iter().step_by(step).cloned().collect(),
        };

        let mut chart = ChartBuilder::on(area)
            .caption(title, bold(26.0))
            .margin(16)
            .margin_right(28)
            .x_label_area_size(62)
            .y_label_area_size(92)
            .build_cartesian_2d(x_axis, 0.0..y_max)
            .map_err(plot_error)?;

        let y_fmt = |y: &f64| number(*y, y_max);
        chart
            .configure_mesh()
            .x_desc(self.x_desc())
            .y_desc(unit)
            .y_label_formatter(&y_fmt)
            .y_labels(6)
            .label_style((FONT, 18))
            .axis_desc_style((FONT, 19))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(WHITE)
            .axis_style(RGBColor(90, 90, 90))
            .draw()
            .map_err(plot_error)?;

        for s in &self.series {
            let pts: Vec<(f64, Stat)> = s
                .points
                .iter()
                .filter_map(|p| p.metrics[metric].map(|m| (p.x, m)))
                .collect();
            let line = ShapeStyle::from(&s.color).stroke_width(3);
            chart
                .draw_series(LineSeries::new(pts.iter().map(|(x, m)| (*x, m.mean)), line))
                .map_err(plot_error)?;
            if self.bars {
                let bar = ShapeStyle::from(&s.color.mix(0.7)).stroke_width(2);
                for (x, m) in pts.iter().filter(|(_, m)| m.max > m.min) {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(*x, m.min), (*x, m.max)],
                            bar,
                        )))
                        .map_err(plot_error)?;
                    for y in [m.min, m.max] {
                        chart
                            .draw_series(std::iter::once(
                                EmptyElement::at((*x, y))
                                    + PathElement::new(vec![(-7, 0), (7, 0)], bar),
                            ))
                            .map_err(plot_error)?;
                    }
                }
            }
            for (x, m) in &pts {
                chart
                    .plotting_area()
                    .draw(&marker((*x, m.mean), s.marker, s.color, 7))
                    .map_err(plot_error)?;
            }
        }
        Ok(())
    }

    fn legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let n = self.series.len().max(1) as i32;
        let (_, h) = area.dim_in_pixel();
        let row = ((h as i32 - 80) / n).clamp(18, 36);
        // Small enough that the longest label fits the legend's width.
        let longest = self
            .series
            .iter()
            .map(|s| s.label.chars().count())
            .max()
            .unwrap_or(1) as f64;
        let fits = ((f64::from(LEGEND_WIDTH) - 74.0) / (longest * 0.5)) as i32;
        let size = (row - 8).min(fits).clamp(11, 20);
        area.draw(&Text::new("strategy @ isolation", (12, 20), bold(20.0)))
            .map_err(plot_error)?;
        for (i, s) in self.series.iter().enumerate() {
            let y = 64 + i as i32 * row;
            let style = ShapeStyle::from(&s.color).stroke_width(3);
            area.draw(&PathElement::new(vec![(12, y), (52, y)], style))
                .map_err(plot_error)?;
            area.draw(&marker((32, y), s.marker, s.color, 6))
                .map_err(plot_error)?;
            area.draw(&Text::new(
                s.label.clone(),
                (62, y - size / 2 - 1),
                (FONT, size as f64),
            ))
            .map_err(plot_error)?;
        }
        Ok(())
    }
}

/// The x axis: linear in its coordinate (log2 of the value on a log scale, the position for
/// categories), with ticks exactly at the swept values, labelled with the values themselves.
struct XAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
}

impl Ranged for XAxis {
    type FormatOption = plotters::coord::ranged1d::NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = (value - self.lo) / (self.hi - self.lo);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.iter().map(|t| t.0).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl plotters::coord::ranged1d::ValueFormatter<f64> for XAxis {
    fn format_ext(&self, value: &f64) -> String {
        self.ticks
            .iter()
            .find(|t| (t.0 - value).abs() < 1e-9)
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }
}

/// A marker whose shape tells isolation levels apart: circle, triangle, square, diamond, cross.
fn marker<'a, DB: DrawingBackend + 'a, C: Clone + 'a>(
    at: C,
    shape: usize,
    color: RGBColor,
    r: i32,
) -> DynElement<'a, DB, C> {
    let fill = ShapeStyle::from(&color).filled();
    let edge = ShapeStyle::from(&WHITE).stroke_width(1);
    match shape % 5 {
        0 => (EmptyElement::at(at) + Circle::new((0, 0), r, fill) + Circle::new((0, 0), r, edge))
            .into_dyn(),
        1 => (EmptyElement::at(at)
            + Polygon::new(vec![(0, -r - 2), (r + 1, r - 1), (-r - 1, r - 1)], fill))
        .into_dyn(),
        2 => (EmptyElement::at(at) + Rectangle::new([(-r + 1, -r + 1), (r - 1, r - 1)], fill))
            .into_dyn(),
        3 => (EmptyElement::at(at)
            + Polygon::new(vec![(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)], fill))
        .into_dyn(),
        _ => (EmptyElement::at(at)
            + PathElement::new(vec![(-r, -r), (r, r)], fill.stroke_width(3))
            + PathElement::new(vec![(-r, r), (r, -r)], fill.stroke_width(3)))
        .into_dyn(),
    }
}

/// The bitmap backend with text drawn here, glyph by glyph with ab_glyph: plotters 0.3.7's own
/// ab_glyph text drops each glyph's left side bearing, so letters like `i` and `l` overlap their
/// neighbours. Everything else goes to the wrapped backend.
struct Glyphs<'a> {
    inner: BitMapBackend<'a>,
    regular: ab_glyph::FontRef<'static>,
    bold: ab_glyph::FontRef<'static>,
}

type BitmapError<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

/// A line of text laid out at the origin: glyphs on a baseline at `ascent`, and its box.
struct Line {
    glyphs: Vec<ab_glyph::Glyph>,
    width: f32,
    height: f32,
}

impl<'a> Glyphs<'a> {
    fn new(inner: BitMapBackend<'a>) -> Self {
        // The bytes are compiled in and known to be valid TrueType: failure is a build defect.
        Glyphs {
            inner,
            regular: ab_glyph::FontRef::try_from_slice(REGULAR).expect("bundled regular font"),
            bold: ab_glyph::FontRef::try_from_slice(BOLD).expect("bundled bold font"),
        }
    }

    fn font<S: BackendTextStyle>(&self, style: &S) -> &ab_glyph::FontRef<'static> {
        match style.style() {
            FontStyle::Bold => &self.bold,
            _ => &self.regular,
        }
    }

    fn layout<S: BackendTextStyle>(&self, text: &str, style: &S) -> Line {
        use ab_glyph::{Font, ScaleFont};
        let size = style.size() as f32;
        let font = self.font(style).as_scaled(size);
        let mut glyphs = Vec::with_capacity(text.len());
        let mut caret = 0.0_f32;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                caret += font.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(size, ab_glyph::point(caret, font.ascent())));
            caret += font.h_advance(id);
            previous = Some(id);
        }
        Line {
            glyphs,
            width: caret,
            height: font.ascent() - font.descent(),
        }
    }
}

impl<'a> DrawingBackend for Glyphs<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), BitmapError<'a>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), BitmapError<'a>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), BitmapError<'a>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), BitmapError<'a>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), BitmapError<'a>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), BitmapError<'a>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), BitmapError<'a>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), BitmapError<'a>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), BitmapError<'a>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), BitmapError<'a>> {
        let line = self.layout(text, style);
        Ok((line.width.ceil() as u32, line.height.ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), BitmapError<'a>> {
        use ab_glyph::Font;
        use plotters_backend::text_anchor::{HPos, VPos};
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let line = self.layout(text, style);
        let (width, height) = (line.width.round() as i32, line.height.round() as i32);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.inner.get_size();
        let font = self.font(style).clone();
        let mut result = Ok(());
        for glyph in line.glyphs {
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let (x0, y0) = (bounds.min.x.round() as i32, bounds.min.y.round() as i32);
            outline.draw(|x, y, coverage| {
                let (x, y) = transform.transform(x0 + x as i32 + dx, y0 + y as i32 + dy);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if result.is_ok() && x >= 0 && y >= 0 && x < w as i32 && y < h as i32 {
                    let pixel = BackendColor {
                        alpha: color.alpha * f64::from(coverage.min(1.0)),
                        rgb: color.rgb,
                    };
                    result = self.inner.draw_pixel((x, y), pixel);
                }
            });
        }
        result
    }
}

/// A tick label: no more decimals than the axis' magnitude needs.
fn number(v: f64, range: f64) -> String {
    let decimals = if range >= 20.0 {
        0
    } else if range >= 2.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ServerInfo;
    use crate::isolation::Isolation;
    use crate::report::document::{Kind, VERSION};

    fn summary(mean: f64, min: f64, max: f64) -> Summary {
        Summary { mean, min, max }
    }

    fn doc(values: Vec<Swept>) -> SweepReport {
        let scenario = crate::scenario::load("ticketmaster", &[]).unwrap();
        let settings = crate::runner::Settings {
            clients: 8,
            duration: std::time::Duration::from_millis(400),
            operations: None,
            timeout: None,
            think: std::time::Duration::from_millis(5),
            max_tries: 10,
            seed: 1,
            connections: None,
            pipeline: true,
            live: None,
            history: None,
        };
        SweepReport {
            kind: Kind::Sweep,
            version: VERSION,
            tool: "contention test".into(),
            scenario,
            server: ServerInfo {
                engine: crate::engine::EngineKind::Postgres,
                version: "PostgreSQL 15.20 on x86_64".into(),
                version_num: 150020,
                ephemeral: true,
                settings: Default::default(),
            },
            servers: Vec::new(),
            nodes: Vec::new(),
            vary: "clients".into(),
            points: values
                .iter()
                .map(|v| SweepPoint {
                    engine: crate::engine::EngineKind::Postgres,
                    strategy: "naive".into(),
                    isolation: Isolation::Rc,
                    value: v.clone(),
                    runs: 2,
                    ops_per_s: summary(10.0, 9.0, 11.0),
                    p99_ms: summary(5.0, 4.0, 6.0),
                    abort_rate: summary(0.1, 0.0, 0.2),
                    anomaly_rate: summary(0.0, 0.0, 0.0),
                    cells: Vec::new(),
                })
                .collect(),
            values,
            repeat: 2,
            settings,
            interrupted: false,
        }
    }

    fn ints(xs: &[i64]) -> Vec<Swept> {
        xs.iter().map(|x| Swept::Int(*x)).collect()
    }

    #[test]
    fn powers_of_two_use_a_log_scale() {
        let f = Figure::from_sweep(&doc(ints(&[1, 2, 4, 8, 16]))).unwrap();
        assert_eq!(f.scale, Scale::Log2);
        assert_eq!(f.ticks[4], (4.0, "16".to_string()));
        assert_eq!(f.series.len(), 1);
        assert_eq!(f.series[0].points.len(), 5);
        // abort rate is shown in percent
        assert!((f.series[0].points[0].metrics[2].unwrap().mean - 10.0).abs() < 1e-9);
        assert!(f.title.starts_with("ticketmaster"), "{}", f.title);
        assert!(f.subtitle.contains("PostgreSQL 15.20") && !f.subtitle.contains("x86_64"));
        assert!(
            !f.subtitle.contains("clients 1"),
            "the varied setting is not repeated"
        );
    }

    #[test]
    fn other_numbers_are_linear_and_strings_categorical() {
        let f = Figure::from_sweep(&doc(ints(&[1, 3, 10]))).unwrap();
        assert_eq!(f.scale, Scale::Linear);
        let f = Figure::from_sweep(&doc(ints(&[1, 10, 50, 100, 500]))).unwrap();
        assert_eq!(f.scale, Scale::Log10);
        let f = Figure::from_sweep(&doc(ints(&[0, 1, 10, 200]))).unwrap();
        assert_eq!(f.scale, Scale::Linear);
        // 0 and 1 would overprint on a 0..200 axis: 1 loses its label
        assert_eq!(f.ticks[1].1, "");
        assert_eq!(f.ticks[2].1, "");
        assert_eq!(f.ticks[3].1, "200");
        let f = Figure::from_sweep(&doc(vec![Swept::parse("low"), Swept::parse("high")])).unwrap();
        assert_eq!(f.scale, Scale::Categorical);
        assert_eq!(f.ticks[1], (1.0, "high".to_string()));
    }

    #[test]
    fn odd_sweeps_still_draw() {
        // One value, nothing committed, strings, fractions.
        for values in [
            ints(&[4]),
            vec![Swept::parse("a")],
            vec![Swept::Float(0.5), Swept::Float(0.25), Swept::Float(2.5)],
            ints(&[0, 1]),
        ] {
            let mut d = doc(values.clone());
            for p in &mut d.points {
                p.p99_ms = summary(0.0, 0.0, 0.0);
                p.anomaly_rate = summary(f64::NAN, f64::NAN, f64::NAN);
            }
            let svg = render_svg(&d).unwrap_or_else(|e| panic!("{values:?}: {e:#}"));
            assert!(
                svg.contains("<svg") && svg.contains("Throughput"),
                "{values:?}"
            );
        }
        let mut empty = doc(Vec::new());
        empty.points.clear();
        assert!(render_svg(&empty).is_err());
    }

    #[test]
    fn tick_labels_drop_useless_decimals() {
        assert_eq!(number(1200.0, 3000.0), "1200");
        assert_eq!(number(0.5, 1.0), "0.5");
        assert_eq!(number(2.0, 10.0), "2");
        assert_eq!(value_label(&Swept::Float(2.0)), "2");
        assert_eq!(value_label(&Swept::Float(2.5)), "2.5");
    }
}
