//! plugin (to be written).
