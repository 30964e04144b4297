//! janitor (to be written).
