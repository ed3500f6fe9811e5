//! Polycom/Poly specifics: device families and models, the part numbers of firmware images,
//! the parameter table with its secret flags, the parameter dictionary, and the renderers of
//! master and configuration files.

pub mod dictionary;
pub mod models;
pub mod params;
pub mod parts;
pub mod render;
