//! A drawing backend that draws nothing and records where every piece of text
//! would land, from the font's own metrics (the ones the PNG and SVG backends use),
//! and every filled coloured rectangle (heat-map cells, colour bars, histogram
//! bars), so that a test can fail when a label leaves the canvas, runs into
//! another, or is drawn over a plot's ink.

use std::cell::RefCell;
use std::rc::Rc;

use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind};

/// Where one piece of text lands, in pixels: `[x0, x1) × [y0, y1)`.
#[derive(Clone, Debug, PartialEq)]
pub struct TextBox {
    pub text: String,
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl TextBox {
    /// The area shared with `other`, in square pixels.
    pub fn overlap(&self, other: &TextBox) -> i64 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0) as i64;
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0) as i64;
        w * h
    }

    /// The box with `margin` pixels more on every side.
    pub fn grown(&self, margin: i32) -> TextBox {
        TextBox {
            x0: self.x0 - margin,
            y0: self.y0 - margin,
            x1: self.x1 + margin,
            y1: self.y1 + margin,
            ..self.clone()
        }
    }

    pub fn inside(&self, (width, height): (u32, u32)) -> bool {
        self.x0 >= 0 && self.y0 >= 0 && self.x1 <= width as i32 && self.y1 <= height as i32
    }
}

/// Every text box of one figure, and the filled coloured areas text must stay off.
#[derive(Clone, Debug)]
pub struct FigureLayout {
    pub name: String,
    pub size: (u32, u32),
    pub texts: Vec<TextBox>,
    pub ink: Vec<TextBox>,
}

impl FigureLayout {
    /// What is wrong with the layout: text off the canvas, and pairs of texts that
    /// overlap by more than `tolerance` square pixels (glyph boxes include a little
    /// spacing, so two labels that merely touch are not counted).
    pub fn problems(&self, tolerance: i64) -> Vec<String> {
        let mut problems = Vec::new();
        for t in &self.texts {
            if !t.inside(self.size) {
                problems.push(format!("{}: {t:?} leaves the {}×{} canvas", self.name, self.size.0, self.size.1));
            }
        }
        for (i, a) in self.texts.iter().enumerate() {
            for b in &self.texts[i + 1..] {
                if a.overlap(b) > tolerance {
                    problems.push(format!("{}: {a:?} overlaps {b:?}", self.name));
                }
            }
            // Over a plot's ink (a filled coloured rectangle): both boxes are exact pixels, so any
            // shared pixel is a glyph drawn on (or under) a bar, cell or colour bar.
            if let Some(ink) = self.ink.iter().find(|ink| a.overlap(ink) > 0) {
                problems.push(format!("{}: {a:?} is drawn over {ink:?}", self.name));
            }
        }
        problems
    }
}

/// The recording backend. `texts` and `ink` are shared: the drawing area takes the backend.
pub struct TextRecorder {
    size: (u32, u32),
    pub texts: Rc<RefCell<Vec<TextBox>>>,
    pub ink: Rc<RefCell<Vec<TextBox>>>,
}

impl TextRecorder {
    pub fn new(size: (u32, u32)) -> TextRecorder {
        TextRecorder { size, texts: Rc::default(), ink: Rc::default() }
    }
}

/// White and near-white fills (the canvas, a legend's background) carry no data: text may lie on them.
fn is_ink(colour: BackendColor) -> bool {
    let (r, g, b) = colour.rgb;
    colour.alpha > 0.0 && (r as u16 + g as u16 + b as u16) < 3 * 235
}

impl DrawingBackend for TextRecorder {
    type ErrorType = std::convert::Infallible;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }

    fn draw_pixel(&mut self, _: BackendCoord, _: BackendColor) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        if fill && is_ink(style.color()) {
            let (x0, x1) = (upper_left.0.min(bottom_right.0), upper_left.0.max(bottom_right.0));
            let (y0, y1) = (upper_left.1.min(bottom_right.1), upper_left.1.max(bottom_right.1));
            self.ink.borrow_mut().push(TextBox { text: "a filled rectangle".into(), x0, y0, x1: x1 + 1, y1: y1 + 1 });
        }
        Ok(())
    }

    /// The pixels plotters' own `draw_text` (the PNG backend's) would colour: the font's
    /// glyphs placed as it places them, and the box around every pixel with any coverage.
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        if text.trim().is_empty() || style.color().alpha == 0.0 {
            return Ok(());
        }
        let font_error = |e| DrawingErrorKind::FontError(Box::new(e));
        let ((min_x, min_y), (max_x, max_y)) = style.layout_box(text).map_err(font_error)?;
        let (width, height) = (max_x - min_x, max_y - min_y);
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
        let mut drawn: Option<TextBox> = None;
        style
            .draw(text, (0, 0), |x, y, colour| {
                if colour.alpha > 0.0 {
                    let (x, y) = transform.transform(x + dx - min_x, y + dy - min_y);
                    let (x, y) = (pos.0 + x, pos.1 + y);
                    let b = drawn.get_or_insert(TextBox { text: text.to_string(), x0: x, y0: y, x1: x + 1, y1: y + 1 });
                    (b.x0, b.y0, b.x1, b.y1) = (b.x0.min(x), b.y0.min(y), b.x1.max(x + 1), b.y1.max(y + 1));
                }
                Ok::<(), std::convert::Infallible>(())
            })
            .map_err(font_error)?
            .ok();
        self.texts.borrow_mut().extend(drawn);
        Ok(())
    }
}
