//! Partial updates. `patchable!` declares an entity's detail struct and its
//! matching "changes" struct (every field optional) together, with the logic
//! that drops no-op fields so an update that changes nothing writes no event.

#[macro_export]
macro_rules! patchable {
    (
        $(#[$dmeta:meta])* $details:ident, $(#[$cmeta:meta])* $changes:ident {
            required { $($r:ident : $rt:ty),* $(,)? }
            optional { $($o:ident : $ot:ty),* $(,)? }
        }
    ) => {
        $(#[$dmeta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $details {
            $(pub $r: $rt,)*
            $(#[serde(default)] pub $o: Option<$ot>,)*
        }

        $(#[$cmeta])*
        #[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
        pub struct $changes {
            $(#[serde(default, skip_serializing_if = "Option::is_none")] pub $r: Option<$rt>,)*
            $(#[serde(default, skip_serializing_if = "Option::is_none")] pub $o: Option<$ot>,)*
        }

        impl $changes {
            /// Keeps only the fields whose value differs from `current`.
            pub fn against(mut self, current: &$details) -> Self {
                $( if self.$r.as_ref() == Some(&current.$r) { self.$r = None; } )*
                $( if self.$o.is_some() && self.$o.as_ref() == current.$o.as_ref() { self.$o = None; } )*
                self
            }
            pub fn is_empty(&self) -> bool {
                *self == Self::default()
            }
            pub fn apply_to(&self, d: &mut $details) {
                $( if let Some(v) = &self.$r { d.$r = v.clone(); } )*
                $( if let Some(v) = &self.$o { d.$o = Some(v.clone()); } )*
            }
        }
    };
}
