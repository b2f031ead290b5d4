//! A drawing backend that draws nothing and records where every piece of text
//! would land, from the font's own metrics (the ones the PNG and SVG backends use),
//! so that a test can fail when a label leaves the canvas or runs into another.

use std::cell::RefCell;
use std::rc::Rc;

use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingBackend, DrawingErrorKind};

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

    pub fn inside(&self, (width, height): (u32, u32)) -> bool {
        self.x0 >= 0 && self.y0 >= 0 && self.x1 <= width as i32 && self.y1 <= height as i32
    }
}

/// Every text box of one figure.
#[derive(Clone, Debug)]
pub struct FigureLayout {
    pub name: String,
    pub size: (u32, u32),
    pub texts: Vec<TextBox>,
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
        }
        problems
    }
}

/// The recording backend. `texts` is shared: the drawing area takes the backend.
pub struct TextRecorder {
    size: (u32, u32),
    pub texts: Rc<RefCell<Vec<TextBox>>>,
}

impl TextRecorder {
    pub fn new(size: (u32, u32)) -> TextRecorder {
        TextRecorder { size, texts: Rc::default() }
    }
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

    /// The box plotters' own `draw_text` fills: the layout box moved by the anchor,
    /// then rotated by the style's transform about the text's position.
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        if text.trim().is_empty() || style.color().alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) =
            style.layout_box(text).map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
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
        let corners = [(dx, dy), (dx + width, dy), (dx, dy + height), (dx + width, dy + height)]
            .map(|(x, y)| transform.transform(x, y));
        let xs = corners.map(|c| c.0);
        let ys = corners.map(|c| c.1);
        self.texts.borrow_mut().push(TextBox {
            text: text.to_string(),
            x0: pos.0 + xs.iter().min().unwrap(),
            y0: pos.1 + ys.iter().min().unwrap(),
            x1: pos.0 + xs.iter().max().unwrap(),
            y1: pos.1 + ys.iter().max().unwrap(),
        });
        Ok(())
    }
}
