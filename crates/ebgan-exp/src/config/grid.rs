//! `[[grid]]` tables: any field a value or a list of values; lists expand as a cartesian product.

use serde::de::{self, DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::marker::PhantomData;

/// A value or a list of values of one field.
#[derive(Clone, Debug)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        macro_rules! one {
            ($name:ident, $t:ty) => {
                fn $name<E: de::Error>(self, v: $t) -> Result<Self::Value, E> {
                    T::deserialize(v.into_deserializer()).map(|x| OneOrMany(vec![x]))
                }
            };
        }
        impl<'de, T: DeserializeOwned> de::Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            one!(visit_bool, bool);
            one!(visit_i64, i64);
            one!(visit_u64, u64);
            one!(visit_f64, f64);
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(de::value::StrDeserializer::<E>::new(v)).map(|x| OneOrMany(vec![x]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = vec![];
                while let Some(x) = seq.next_element::<T>()? {
                    out.push(x);
                }
                if out.is_empty() {
                    return Err(de::Error::custom("an empty list expands to no runs"));
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
