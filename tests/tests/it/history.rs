//! The history actions end to end through the Lambda handlers, on both backends (being written).
