//! Reading a platform's JSON record field by field, with errors that name the field's path.

use serde_json::Value;

use crate::FieldError;

/// A JSON object being read, and where it sits in the record (`orders.order[2]`).
#[derive(Clone)]
pub(crate) struct Obj<'a> {
    value: &'a Value,
    path: String,
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

impl<'a> Obj<'a> {
    pub(crate) fn root(value: &'a Value) -> Result<Obj<'a>, FieldError> {
        if value.is_object() {
            Ok(Obj {
                value,
                path: String::new(),
            })
        } else {
            Err(FieldError::new("", "the record is not a JSON object"))
        }
    }

    pub(crate) fn path(&self, field: &str) -> String {
        join(&self.path, field)
    }

    pub(crate) fn err(&self, field: &str, reason: impl Into<String>) -> FieldError {
        FieldError::new(self.path(field), reason)
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.value.get(field).filter(|v| !v.is_null())
    }

    /// A string, or a number written as one (platforms send ids either way); "" when absent.
    pub(crate) fn text(&self, field: &str) -> Result<String, FieldError> {
        match self.get(field) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.trim().to_owned()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(self.err(field, format!("expected a string, got {other}"))),
        }
    }

    /// The first of `fields` that is present and not blank, if any (platforms carry the same
    /// thing under several names: the merchant's SKU code, else the platform's SKU id).
    pub(crate) fn first_text(&self, fields: &[&str]) -> Result<Option<String>, FieldError> {
        for field in fields {
            let s = self.text(field)?;
            if !s.is_empty() {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// A whole number that must be present.
    pub(crate) fn required_int(&self, field: &str) -> Result<i64, FieldError> {
        self.int(field)?.ok_or_else(|| self.err(field, "required"))
    }

    /// A string that must be present and not blank.
    pub(crate) fn required(&self, field: &str) -> Result<String, FieldError> {
        let s = self.text(field)?;
        if s.is_empty() {
            return Err(self.err(field, "required"));
        }
        Ok(s)
    }

    /// An integer, given as a number or a string of digits; `None` when absent or "".
    pub(crate) fn int(&self, field: &str) -> Result<Option<i64>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.err(field, format!("expected a whole number, got {n}"))),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.err(field, format!("expected a whole number, got {s:?}"))),
            Some(other) => Err(self.err(field, format!("expected a number, got {other}"))),
        }
    }

    /// An amount in yuan with at most two decimals ("199.00", 199.5), in cents (fen); 0 when
    /// absent. Never through floating point.
    pub(crate) fn yuan(&self, field: &str) -> Result<i64, FieldError> {
        let text = match self.get(field) {
            None => return Ok(0),
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => return Err(self.err(field, format!("expected an amount, got {other}"))),
        };
        cents(&text).ok_or_else(|| {
            self.err(
                field,
                format!("expected an amount in yuan with at most two decimals, got {text:?}"),
            )
        })
    }

    /// An object; `None` when absent.
    pub(crate) fn obj(&self, field: &str) -> Result<Option<Obj<'a>>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) if v.is_object() => Ok(Some(Obj {
                value: v,
                path: self.path(field),
            })),
            Some(other) => Err(self.err(field, format!("expected an object, got {other}"))),
        }
    }

    /// The objects of an array (empty when absent).
    pub(crate) fn list(&self, field: &str) -> Result<Vec<Obj<'a>>, FieldError> {
        let Some(value) = self.get(field) else {
            return Ok(Vec::new());
        };
        let Some(items) = value.as_array() else {
            return Err(self.err(field, format!("expected an array, got {value}")));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let path = format!("{}[{i}]", self.path(field));
                if v.is_object() {
                    Ok(Obj { value: v, path })
                } else {
                    Err(FieldError::new(
                        path,
                        format!("expected an object, got {v}"),
                    ))
                }
            })
            .collect()
    }
}

/// "199.00" → 19900; at most two decimals, no sign, no exponent.
pub(crate) fn cents(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || frac.len() > 2 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

/// "2025-11-11 00:00:05" in China Standard Time (UTC+8, as every Chinese platform writes its
/// times) → Unix ms; `None` for "" and for platforms' zero time "1970-01-01 08:00:00".
pub(crate) fn china_time(obj: &Obj<'_>, field: &str) -> Result<Option<u64>, FieldError> {
    let text = obj.text(field)?;
    if text.is_empty() {
        return Ok(None);
    }
    let naive =
        chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S").map_err(|_| {
            obj.err(
                field,
                format!("expected a time like 2025-11-11 00:00:05, got {text:?}"),
            )
        })?;
    let ms = naive.and_utc().timestamp_millis() - 8 * 3_600_000;
    Ok(u64::try_from(ms).ok().filter(|&ms| ms > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_cents() {
        assert_eq!(cents("199.00"), Some(19900));
        assert_eq!(cents("199.5"), Some(19950));
        assert_eq!(cents("0.01"), Some(1));
        assert_eq!(cents("12"), Some(1200));
        for bad in ["", "-1.00", "1.001", "1e3", ".5", "1,00", "abc"] {
            assert_eq!(cents(bad), None, "{bad}");
        }
    }

    #[test]
    fn china_times_are_utc_plus_eight() {
        let v = serde_json::json!({"t": "2025-11-11 00:00:05", "z": "1970-01-01 08:00:00", "b": "11/11"});
        let o = Obj::root(&v).expect("object");
        assert_eq!(china_time(&o, "t").expect("time"), Some(1_762_790_405_000));
        assert_eq!(china_time(&o, "z").expect("zero"), None);
        assert_eq!(china_time(&o, "missing").expect("absent"), None);
        assert!(china_time(&o, "b")
            .expect_err("bad")
            .to_string()
            .contains("b"));
    }
}
