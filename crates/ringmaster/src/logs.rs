//! logs (to be written).
