//! Objects as files under a root directory, the key as the relative path; written atomically.
