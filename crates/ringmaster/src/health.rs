//! health (to be written).
