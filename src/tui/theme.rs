//! Colours and glyphs. The three built-in themes are YAML files in `themes/`, embedded in the
//! binary; a user theme is a partial file of the same roles laid over one of them.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

/// The built-in themes, by name.
pub const BUILTIN: [(&str, &str); 3] = [
    ("dark", include_str!("../../themes/dark.yaml")),
    ("light", include_str!("../../themes/light.yaml")),
    ("mono", include_str!("../../themes/mono.yaml")),
];

/// A theme file that could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeError {
    pub origin: String,
    pub what: String,
}

impl fmt::Display for ThemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "theme {}: {}", self.origin, self.what)
    }
}

impl std::error::Error for ThemeError {}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSpec {
    #[serde(default)]
    fg: Option<String>,
    #[serde(default)]
    bg: Option<String>,
    #[serde(default)]
    modifiers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    text: RoleSpec,
    dim: RoleSpec,
    title: RoleSpec,
    border: RoleSpec,
    border_focus: RoleSpec,
    selected: RoleSpec,
    header: RoleSpec,
    key: RoleSpec,
    ok: RoleSpec,
    warn: RoleSpec,
    error: RoleSpec,
    running: RoleSpec,
    finished: RoleSpec,
    stopped: RoleSpec,
    failed: RoleSpec,
    crashed: RoleSpec,
    reference: RoleSpec,
    gauge: RoleSpec,
    series: Vec<String>,
    raw: RoleSpec,
    best: RoleSpec,
}

/// Every style the screens use, by role.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub dim: Style,
    pub title: Style,
    pub border: Style,
    pub border_focus: Style,
    pub selected: Style,
    pub header: Style,
    pub key: Style,
    pub ok: Style,
    pub warn: Style,
    pub error: Style,
    pub running: Style,
    pub finished: Style,
    pub stopped: Style,
    pub failed: Style,
    pub crashed: Style,
    pub reference: Style,
    pub gauge: Style,
    /// Colours of chart series, in order (total, instance, feature, ...).
    pub series: Vec<Color>,
    /// The raw (unsmoothed) curve drawn behind the smoothed one.
    pub raw: Style,
    /// The best value of a metric.
    pub best: Style,
}

impl Theme {
    /// A built-in theme by name.
    pub fn builtin(name: &str) -> Result<Theme, ThemeError> {
        Theme::layered(name, None)
    }

    /// `base` (a built-in name) with the roles of the YAML `user` (origin, text) laid over it.
    pub fn layered(base: &str, user: Option<(&str, &str)>) -> Result<Theme, ThemeError> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == base)
            .ok_or_else(|| ThemeError {
                origin: base.to_string(),
                what: format!(
                    "no such built-in theme (allowed: {})",
                    BUILTIN.map(|(n, _)| n).join(", ")
                ),
            })?;
        let mut doc = parse_mapping(base, text)?;
        let mut origin = base.to_string();
        if let Some((user_origin, user_text)) = user {
            for (k, v) in parse_mapping(user_origin, user_text)? {
                doc.insert(k, v);
            }
            origin = user_origin.to_string();
        }
        let file: ThemeFile =
            serde_yaml::from_value(Value::Mapping(doc)).map_err(|e| ThemeError {
                origin: origin.clone(),
                what: e.to_string(),
            })?;
        Theme::from_file(base, &origin, &file)
    }

    /// The theme to use: `--theme FILE` or the user's `theme.yaml` in `config_dir` laid over
    /// `dark` (or over the built-in theme the file names with `base: NAME`); `mono` when
    /// `no_color` (the `NO_COLOR` convention) whatever else is asked.
    pub fn resolve(
        file: Option<&Path>,
        config_dir: Option<&Path>,
        no_color: bool,
    ) -> Result<Theme, ThemeError> {
        let user_path: Option<PathBuf> = match file {
            Some(p) => Some(p.to_path_buf()),
            None => config_dir
                .map(|d| d.join("theme.yaml"))
                .filter(|p| p.is_file()),
        };
        let user_text = match &user_path {
            Some(p) => Some(fs::read_to_string(p).map_err(|e| ThemeError {
                origin: p.display().to_string(),
                what: e.to_string(),
            })?),
            None => None,
        };
        if no_color {
            return Theme::builtin("mono");
        }
        match (&user_path, &user_text) {
            (Some(p), Some(text)) => {
                let origin = p.display().to_string();
                let mut doc = parse_mapping(&origin, text)?;
                let base = match doc.remove(Value::from("base")) {
                    None => "dark".to_string(),
                    Some(Value::String(s)) => s,
                    Some(other) => {
                        return Err(ThemeError {
                            origin,
                            what: format!("base: {other:?} is not a theme name"),
                        })
                    }
                };
                let rest = serde_yaml::to_string(&doc).map_err(|e| ThemeError {
                    origin: origin.clone(),
                    what: e.to_string(),
                })?;
                Theme::layered(&base, Some((&origin, &rest)))
            }
            _ => Theme::builtin("dark"),
        }
    }

    fn from_file(name: &str, origin: &str, f: &ThemeFile) -> Result<Theme, ThemeError> {
        let role = |role: &str, spec: &RoleSpec| -> Result<Style, ThemeError> {
            style(spec).map_err(|what| ThemeError {
                origin: origin.to_string(),
                what: format!("{role}: {what}"),
            })
        };
        let series = f
            .series
            .iter()
            .map(|c| {
                color(c).map_err(|what| ThemeError {
                    origin: origin.to_string(),
                    what: format!("series: {what}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if series.is_empty() {
            return Err(ThemeError {
                origin: origin.to_string(),
                what: "series: needs at least one colour".into(),
            });
        }
        Ok(Theme {
            name: name.to_string(),
            text: role("text", &f.text)?,
            dim: role("dim", &f.dim)?,
            title: role("title", &f.title)?,
            border: role("border", &f.border)?,
            border_focus: role("border_focus", &f.border_focus)?,
            selected: role("selected", &f.selected)?,
            header: role("header", &f.header)?,
            key: role("key", &f.key)?,
            ok: role("ok", &f.ok)?,
            warn: role("warn", &f.warn)?,
            error: role("error", &f.error)?,
            running: role("running", &f.running)?,
            finished: role("finished", &f.finished)?,
            stopped: role("stopped", &f.stopped)?,
            failed: role("failed", &f.failed)?,
            crashed: role("crashed", &f.crashed)?,
            reference: role("reference", &f.reference)?,
            gauge: role("gauge", &f.gauge)?,
            series,
            raw: role("raw", &f.raw)?,
            best: role("best", &f.best)?,
        })
    }

    /// The colour of chart series `i` (cycling).
    pub fn series_color(&self, i: usize) -> Color {
        self.series[i % self.series.len()]
    }
}

impl Default for Theme {
    fn default() -> Theme {
        // The embedded dark theme is checked by a unit test, so this cannot fail in a release.
        Theme::builtin("dark").unwrap_or_else(|e| panic!("built-in theme: {e}"))
    }
}

fn parse_mapping(origin: &str, text: &str) -> Result<Mapping, ThemeError> {
    match serde_yaml::from_str::<Value>(text) {
        Ok(Value::Mapping(m)) => Ok(m),
        Ok(Value::Null) => Ok(Mapping::new()),
        Ok(_) => Err(ThemeError {
            origin: origin.to_string(),
            what: "expected a mapping of roles (text: {fg: ...}, ...)".into(),
        }),
        Err(e) => Err(ThemeError {
            origin: origin.to_string(),
            what: e.to_string(),
        }),
    }
}

fn style(spec: &RoleSpec) -> Result<Style, String> {
    let mut s = Style::default();
    if let Some(fg) = &spec.fg {
        s = s.fg(color(fg)?);
    }
    if let Some(bg) = &spec.bg {
        s = s.bg(color(bg)?);
    }
    for m in &spec.modifiers {
        let modifier = match m.as_str() {
            "bold" => Modifier::BOLD,
            "dim" => Modifier::DIM,
            "italic" => Modifier::ITALIC,
            "underlined" => Modifier::UNDERLINED,
            "reversed" => Modifier::REVERSED,
            other => {
                return Err(format!(
                    "modifier {other:?} is not one of bold, dim, italic, underlined, reversed"
                ))
            }
        };
        s = s.add_modifier(modifier);
    }
    Ok(s)
}

fn color(text: &str) -> Result<Color, String> {
    if text == "reset" {
        return Ok(Color::Reset);
    }
    if let Ok(i) = text.parse::<u8>() {
        return Ok(Color::Indexed(i));
    }
    text.parse::<Color>()
        .map_err(|_| format!("colour {text:?} is not a colour name, #rrggbb or an index 0-255"))
}

/// The characters drawn for lines, bars and markers: Unicode, or plain ASCII (`--ascii`) for
/// terminals without box-drawing and braille characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyphs {
    pub ascii: bool,
}

impl Glyphs {
    /// Eight levels of a sparkline or bar, lowest first.
    pub fn bars(self) -> [char; 8] {
        if self.ascii {
            ['_', '_', '.', '.', '-', '-', '=', '#']
        } else {
            ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█']
        }
    }
    pub fn full(self) -> char {
        if self.ascii {
            '#'
        } else {
            '█'
        }
    }
    pub fn empty(self) -> char {
        if self.ascii {
            '.'
        } else {
            '░'
        }
    }
    /// The mark of the best value in a sparkline.
    pub fn best(self) -> char {
        if self.ascii {
            '*'
        } else {
            '★'
        }
    }
    pub fn border_set(self) -> ratatui::symbols::border::Set<'static> {
        if self.ascii {
            ratatui::symbols::border::Set {
                top_left: "+",
                top_right: "+",
                bottom_left: "+",
                bottom_right: "+",
                vertical_left: "|",
                vertical_right: "|",
                horizontal_top: "-",
                horizontal_bottom: "-",
            }
        } else {
            ratatui::symbols::border::ROUNDED
        }
    }
    /// The chart marker: braille dots, or ASCII dots.
    pub fn marker(self) -> ratatui::symbols::Marker {
        if self.ascii {
            ratatui::symbols::Marker::Dot
        } else {
            ratatui::symbols::Marker::Braille
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_theme_parses() {
        for (name, _) in BUILTIN {
            let t = Theme::builtin(name).unwrap();
            assert_eq!(t.name, name);
            assert_eq!(t.series.len(), 6);
        }
    }

    #[test]
    fn mono_has_no_colour() {
        let t = Theme::builtin("mono").unwrap();
        for s in [t.text, t.selected, t.running, t.crashed, t.error, t.gauge] {
            assert!(matches!(s.fg, None | Some(Color::Reset)), "{s:?}");
            assert!(matches!(s.bg, None | Some(Color::Reset)), "{s:?}");
        }
        assert!(t.selected.add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn a_user_theme_changes_only_its_roles() {
        let t = Theme::layered(
            "dark",
            Some((
                "mine.yaml",
                "running: { fg: \"#ff0000\", modifiers: [italic] }\n",
            )),
        )
        .unwrap();
        let dark = Theme::builtin("dark").unwrap();
        assert_eq!(t.running.fg, Some(Color::Rgb(255, 0, 0)));
        assert!(t.running.add_modifier.contains(Modifier::ITALIC));
        assert_eq!(t.finished, dark.finished);
        assert_eq!(t.series, dark.series);
    }

    #[test]
    fn a_user_theme_may_name_its_base() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.yaml");
        fs::write(&p, "base: light\nok: { fg: blue }\n").unwrap();
        let t = Theme::resolve(Some(&p), None, false).unwrap();
        assert_eq!(t.name, "light");
        assert_eq!(t.ok.fg, Some(Color::Blue));
        assert_eq!(t.error, Theme::builtin("light").unwrap().error);
    }

    #[test]
    fn bad_theme_files_say_what_is_wrong() {
        let e = Theme::layered("dark", Some(("u.yaml", "ok: { fg: purplish }"))).unwrap_err();
        assert_eq!(e.origin, "u.yaml");
        assert!(e.what.starts_with("ok: colour \"purplish\""), "{}", e.what);
        let e = Theme::layered("dark", Some(("u.yaml", "okay: { fg: red }"))).unwrap_err();
        assert!(e.what.contains("unknown field `okay`"), "{}", e.what);
        let e = Theme::layered(
            "dark",
            Some(("u.yaml", "ok: { fg: red, modifiers: [blink] }")),
        )
        .unwrap_err();
        assert!(e.what.contains("\"blink\""), "{}", e.what);
        let e = Theme::builtin("solarized").unwrap_err();
        assert!(e.what.contains("dark, light, mono"), "{}", e.what);
    }

    #[test]
    fn no_color_wins() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.yaml");
        fs::write(&p, "ok: { fg: blue }\n").unwrap();
        assert_eq!(Theme::resolve(Some(&p), None, true).unwrap().name, "mono");
        // The user's config folder is looked at when no file is given.
        fs::write(dir.path().join("theme.yaml"), "base: light\n").unwrap();
        assert_eq!(
            Theme::resolve(None, Some(dir.path()), false).unwrap().name,
            "light"
        );
        assert_eq!(Theme::resolve(None, None, false).unwrap().name, "dark");
    }
}
