//! Alerts as one log line on stdout each and one JSON line each in a file.
