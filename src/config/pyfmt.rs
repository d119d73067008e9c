//! Numbers printed as Python's `repr(float)` prints them (`0.0003`, `1e-05`, `1.0`), because the
//! reference builds file names with Python's formatting and existing records must keep their names.

/// Formats `x` like Python's `repr(x)` for a float: the shortest digits that round-trip, positional
/// for decimal exponents in [-4, 16), scientific with a signed two-digit exponent otherwise.
pub fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.5e-5", "3e-4".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    if (-4..16).contains(&exp) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::python_float;

    #[test]
    fn matches_python_repr() {
        // Expected strings are Python 3's repr() of the same floats.
        let cases = [
            (0.0003, "0.0003"),
            (3e-4, "0.0003"),
            (1e-5, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (0.001, "0.001"),
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1e16, "1e+16"),
            (123_456_789_012_345.0, "123456789012345.0"),
            (2.5e-10, "2.5e-10"),
            (0.1, "0.1"),
            (-0.0002, "-0.0002"),
            (0.0, "0.0"),
        ];
        for (x, want) in cases {
            assert_eq!(python_float(x), want, "python_float({x:?})");
        }
    }
}
