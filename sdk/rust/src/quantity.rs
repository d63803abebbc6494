//! Kubernetes resource quantities (`"500m"`, `"2"`, `"128Mi"`, `"1G"`, `"1e3"`)
//! parsed exactly, as `resource.Quantity` does.
//!
//! The grammar is a signed decimal number followed by a suffix: a binary SI
//! suffix (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`), a decimal SI suffix (`n`, `u`,
//! `m`, none, `k`, `M`, `G`, `T`, `P`, `E`) or a decimal exponent (`e3`,
//! `E-2`). Values are kept in units of 10⁻⁹; anything finer is rounded up,
//! away from zero, like Kubernetes does.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

/// A parsed quantity. It compares by value (`"1"` equals `"1000m"`) and
/// displays as the text it was parsed from (a sum displays in canonical form).
#[derive(Debug, Clone)]
pub struct Quantity {
    nanos: i128,
    text: String,
}

/// A text that is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError {
    text: String,
    reason: &'static str,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid quantity {:?}: {}", self.text, self.reason)
    }
}

impl std::error::Error for QuantityError {}

const NANOS_PER_UNIT: i128 = 1_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;

enum Scale {
    /// Times 10 to this power.
    Decimal(i64),
    /// Times 2 to this power.
    Binary(u32),
}

impl Quantity {
    /// Parses a quantity; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let trimmed = text.trim();
        let error = |reason| QuantityError {
            text: text.to_owned(),
            reason,
        };
        let (negative, rest) = match trimmed.as_bytes().first() {
            Some(b'-') => (true, &trimmed[1..]),
            Some(b'+') => (false, &trimmed[1..]),
            _ => (false, trimmed),
        };

        let mut mantissa: i128 = 0;
        let mut digits = 0usize;
        let mut fraction_digits: i64 = 0;
        let mut seen_point = false;
        let mut end = rest.len();
        for (index, byte) in rest.bytes().enumerate() {
            match byte {
                b'0'..=b'9' => {
                    mantissa = mantissa
                        .checked_mul(10)
                        .and_then(|m| m.checked_add(i128::from(byte - b'0')))
                        .ok_or_else(|| error("too many digits"))?;
                    digits += 1;
                    if seen_point {
                        fraction_digits += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => {
                    end = index;
                    break;
                }
            }
        }
        if digits == 0 {
            return Err(error("expected a number"));
        }

        let scale = match &rest[end..] {
            "" => Scale::Decimal(0),
            "n" => Scale::Decimal(-9),
            "u" => Scale::Decimal(-6),
            "m" => Scale::Decimal(-3),
            "k" => Scale::Decimal(3),
            "M" => Scale::Decimal(6),
            "G" => Scale::Decimal(9),
            "T" => Scale::Decimal(12),
            "P" => Scale::Decimal(15),
            "E" => Scale::Decimal(18),
            "Ki" => Scale::Binary(10),
            "Mi" => Scale::Binary(20),
            "Gi" => Scale::Binary(30),
            "Ti" => Scale::Binary(40),
            "Pi" => Scale::Binary(50),
            "Ei" => Scale::Binary(60),
            suffix if suffix.starts_with(['e', 'E']) => {
                Scale::Decimal(parse_exponent(&suffix[1..]).ok_or_else(|| error("bad exponent"))?)
            }
            _ => return Err(error("unknown suffix")),
        };

        let too_large = || error("too large");
        let magnitude = match scale {
            Scale::Decimal(exponent) => scale10(mantissa, exponent - fraction_digits + 9),
            Scale::Binary(bits) => mantissa
                .checked_mul(1i128 << bits)
                .and_then(|m| scale10(m, 9 - fraction_digits)),
        }
        .ok_or_else(too_large)?;

        Ok(Quantity {
            nanos: if negative { -magnitude } else { magnitude },
            text: trimmed.to_owned(),
        })
    }

    /// The value in units of 10⁻⁹ (e.g. nanocores, or nanobytes).
    pub fn as_nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in thousandths, rounded up away from zero, like
    /// Kubernetes' `MilliValue` (millicores for CPU).
    pub fn milli_value(&self) -> i128 {
        div_away_from_zero(self.nanos, NANOS_PER_MILLI)
    }

    /// The value rounded up away from zero to an integer, like Kubernetes'
    /// `Value` (bytes for memory).
    pub fn value(&self) -> i128 {
        div_away_from_zero(self.nanos, NANOS_PER_UNIT)
    }

    /// The text this quantity was parsed from, trimmed, or the canonical
    /// form of a sum.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the text uses a binary SI suffix (`Ki` ... `Ei`).
    fn is_binary(&self) -> bool {
        ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
            .iter()
            .any(|suffix| self.text.ends_with(suffix))
    }
}

impl std::ops::Add for &Quantity {
    type Output = Quantity;

    /// The sum (saturating), written in canonical form in the style of the
    /// left operand as Kubernetes does: `128Mi + 128Mi` is `256Mi`,
    /// `500m + 1` is `1500m`, `1G + 500M` is `1500M`.
    fn add(self, other: &Quantity) -> Quantity {
        let nanos = self.nanos.saturating_add(other.nanos);
        Quantity {
            nanos,
            text: canonical(nanos, self.is_binary()),
        }
    }
}

/// Kubernetes' canonical text of a value: with a binary suffix if asked for
/// and the value is a whole number of at least 1024 in magnitude, else with
/// the largest decimal suffix that keeps the number whole.
fn canonical(nanos: i128, binary: bool) -> String {
    if binary && nanos % NANOS_PER_UNIT == 0 && (nanos / NANOS_PER_UNIT).abs() >= 1024 {
        let mut number = nanos / NANOS_PER_UNIT;
        let mut suffix = 0;
        while suffix < 6 && number % 1024 == 0 {
            number /= 1024;
            suffix += 1;
        }
        return format!(
            "{number}{}",
            ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][suffix]
        );
    }
    if nanos == 0 {
        return "0".to_owned();
    }
    let mut number = nanos;
    let mut suffix = 0;
    while suffix < 9 && number % 1000 == 0 {
        number /= 1000;
        suffix += 1;
    }
    format!(
        "{number}{}",
        ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"][suffix]
    )
}

/// Parses the integer of a decimal exponent: an optional sign and digits.
/// Exponents too large for any quantity saturate; scaling rejects or rounds them.
fn parse_exponent(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .parse::<i64>()
        .unwrap_or(i64::MAX / 2)
        .min(i64::MAX / 2);
    Some(if text.starts_with('-') {
        -magnitude
    } else {
        magnitude
    })
}

/// `value × 10^exponent`, rounded up away from zero; `None` on overflow.
fn scale10(value: i128, exponent: i64) -> Option<i128> {
    if exponent >= 0 {
        let factor = 10i128.checked_pow(u32::try_from(exponent).ok()?)?;
        value.checked_mul(factor)
    } else {
        match u32::try_from(-exponent)
            .ok()
            .and_then(|e| 10i128.checked_pow(e))
        {
            Some(divisor) => Some(div_away_from_zero(value, divisor)),
            // Smaller than any representable step: rounds up to one step.
            None => Some(value.signum()),
        }
    }
}

fn div_away_from_zero(value: i128, divisor: i128) -> i128 {
    let quotient = value / divisor;
    if value % divisor == 0 {
        quotient
    } else {
        quotient + value.signum()
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Quantity::parse(text)
    }
}

impl TryFrom<&K8sQuantity> for Quantity {
    type Error = QuantityError;

    fn try_from(quantity: &K8sQuantity) -> Result<Self, Self::Error> {
        Quantity::parse(&quantity.0)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(text: &str) -> i128 {
        Quantity::parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .as_nanos()
    }

    #[test]
    fn decimal_si() {
        assert_eq!(nanos("500m"), 500_000_000);
        assert_eq!(nanos("2"), 2_000_000_000);
        assert_eq!(nanos("0.5"), 500_000_000);
        assert_eq!(nanos(".5"), 500_000_000);
        assert_eq!(nanos("5."), 5_000_000_000);
        assert_eq!(nanos("1.5k"), 1_500 * NANOS_PER_UNIT);
        assert_eq!(nanos("1G"), 1_000_000_000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1M"), 1_000_000 * NANOS_PER_UNIT);
        assert_eq!(nanos("3T"), 3_000_000_000_000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1P"), 10i128.pow(15) * NANOS_PER_UNIT);
        assert_eq!(nanos("2E"), 2 * 10i128.pow(18) * NANOS_PER_UNIT);
        assert_eq!(nanos("100u"), 100_000);
        assert_eq!(nanos("5n"), 5);
        assert_eq!(nanos("0"), 0);
        assert_eq!(nanos("007"), 7 * NANOS_PER_UNIT);
    }

    #[test]
    fn binary_si() {
        assert_eq!(nanos("128Mi"), 128 * (1 << 20) * NANOS_PER_UNIT);
        assert_eq!(nanos("1Ki"), 1024 * NANOS_PER_UNIT);
        assert_eq!(nanos("1.5Gi"), 1_610_612_736 * NANOS_PER_UNIT);
        assert_eq!(nanos("0.1Ki"), 102_400_000_000);
        assert_eq!(nanos("1Ti"), (1i128 << 40) * NANOS_PER_UNIT);
        assert_eq!(nanos("1Pi"), (1i128 << 50) * NANOS_PER_UNIT);
        assert_eq!(nanos("1Ei"), (1i128 << 60) * NANOS_PER_UNIT);
    }

    #[test]
    fn exponents() {
        assert_eq!(nanos("1e3"), 1_000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1E3"), 1_000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1e+3"), 1_000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1.5e-3"), 1_500_000);
        assert_eq!(nanos("12e0"), 12 * NANOS_PER_UNIT);
        assert_eq!(nanos("1e-9"), 1);
        // "E" alone is the exa suffix, not an exponent.
        assert_eq!(nanos("1E"), 10i128.pow(18) * NANOS_PER_UNIT);
    }

    #[test]
    fn signs() {
        assert_eq!(nanos("+1"), NANOS_PER_UNIT);
        assert_eq!(nanos("-1"), -NANOS_PER_UNIT);
        assert_eq!(nanos("-500m"), -500_000_000);
    }

    #[test]
    fn below_a_nano_rounds_away_from_zero() {
        assert_eq!(nanos("0.1n"), 1);
        assert_eq!(nanos("1e-12"), 1);
        assert_eq!(nanos("1e-400"), 1);
        assert_eq!(nanos("-1e-12"), -1);
        assert_eq!(nanos("0e-400"), 0);
        assert_eq!(nanos("1.0000000001"), 1_000_000_001);
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "", " ", "m", "abc", "1K", "1 Mi", "1.5.5", "1e", "1e+", "1ee3", "1Mii", "--1", "1m3",
            "0x10", "1e3.5", ".", "+", "1i",
        ] {
            assert!(Quantity::parse(text).is_err(), "{text:?} parsed");
        }
        assert!(Quantity::parse("1e400").is_err());
        assert!(Quantity::parse("100000000000000000000000000000000000000000").is_err());
        assert_eq!(
            Quantity::parse("1K").unwrap_err().to_string(),
            r#"invalid quantity "1K": unknown suffix"#
        );
    }

    #[test]
    fn rounding_like_kubernetes() {
        let q = |t: &str| Quantity::parse(t).unwrap();
        assert_eq!(q("500m").milli_value(), 500);
        assert_eq!(q("0.1m").milli_value(), 1);
        assert_eq!(q("2").milli_value(), 2_000);
        assert_eq!(q("500m").value(), 1);
        assert_eq!(q("128Mi").value(), 134_217_728);
        assert_eq!(q("1.5").value(), 2);
        assert_eq!(q("-1.5").value(), -2);
        assert_eq!(q("1k").value(), 1_000);
    }

    #[test]
    fn sums_are_canonical() {
        let sum = |a: &str, b: &str| {
            (&Quantity::parse(a).unwrap() + &Quantity::parse(b).unwrap()).to_string()
        };
        assert_eq!(sum("128Mi", "128Mi"), "256Mi");
        assert_eq!(sum("1Gi", "512Mi"), "1536Mi");
        assert_eq!(sum("1Ki", "100"), "1124");
        assert_eq!(sum("100", "1Ki"), "1124");
        assert_eq!(sum("512", "512"), "1024");
        assert_eq!(sum("500", "500"), "1k");
        assert_eq!(sum("1000Mi", "24Mi"), "1Gi");
        assert_eq!(sum("500m", "500m"), "1");
        assert_eq!(sum("500m", "1"), "1500m");
        assert_eq!(sum("1G", "500M"), "1500M");
        assert_eq!(sum("100u", "1n"), "100001n");
        assert_eq!(sum("1", "-1"), "0");
        assert_eq!(sum("-2", "500m"), "-1500m");
        assert_eq!(sum("1E", "1E"), "2E");
        assert_eq!(sum("1000E", "0"), "1000E");
        let q = Quantity::parse("1Mi").unwrap();
        assert_eq!(&q + &q, Quantity::parse("2097152").unwrap());
    }

    #[test]
    fn compares_by_value_displays_text() {
        let q = |t: &str| Quantity::parse(t).unwrap();
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1e3"), q("1k"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("100m") < q("0.2"));
        assert_eq!(q(" 1000m ").to_string(), "1000m");
        assert_eq!(
            Quantity::try_from(&K8sQuantity("64Mi".into())).unwrap(),
            q("67108864")
        );
    }
}
