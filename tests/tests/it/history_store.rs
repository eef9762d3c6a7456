//! The History port's contract on both adapters (being written).
