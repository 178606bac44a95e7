/* Header-only shims; this file gives the C target a source to compile. */
