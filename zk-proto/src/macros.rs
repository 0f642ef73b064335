//! Two small `macro_rules!` helpers that keep the record and enum files short.
//!
//! * `jute_record!` declares a struct whose wire form is its fields in declaration order (that
//!   is all a jute record is) and implements [`Encode`](crate::Encode) and
//!   [`Decode`](crate::Decode) for it by delegating to each field's type.
//! * `code_enum!` declares a `#[repr(i32)]` enum for a numeric protocol code with a checked
//!   `TryFrom<i32>` (unknown numbers become an [`UnknownValue`](crate::UnknownValue)), `From<_>
//!   for i32`, an `ALL` list and the Java name of every value.

/// Declares a jute record: a struct encoded as its fields, in order.
macro_rules! jute_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::codec::Encode for $name {
            fn encode<BM: ::bytes::BufMut>(&self, _buf: &mut BM) {
                $( $crate::codec::Encode::encode(&self.$field, _buf); )*
            }

            fn encoded_len(&self) -> usize {
                0 $( + $crate::codec::Encode::encoded_len(&self.$field) )*
            }
        }

        impl $crate::codec::Decode for $name {
            const MIN_LEN: usize = 0 $( + <$ty as $crate::codec::Decode>::MIN_LEN )*;

            fn decode<BB: ::bytes::Buf>(_buf: &mut BB) -> Result<Self, $crate::codec::DecodeError> {
                // Struct expression fields are evaluated in source order = wire order.
                Ok(Self { $( $field: $crate::codec::Decode::decode(_buf)?, )* })
            }
        }
    };
}

/// Declares a numeric protocol code enum with checked conversions.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $jname:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The number sent on the wire.
            pub const fn as_i32(self) -> i32 {
                self as i32
            }

            /// The name Apache ZooKeeper's Java code gives this value.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $jname, )*
                }
            }
        }

        impl TryFrom<i32> for $name {
            type Error = $crate::codec::UnknownValue;

            fn try_from(value: i32) -> Result<Self, $crate::codec::UnknownValue> {
                match value {
                    $( $value => Ok($name::$variant), )*
                    _ => Err($crate::codec::UnknownValue { kind: $kind, value }),
                }
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v as i32
            }
        }
    };
}
