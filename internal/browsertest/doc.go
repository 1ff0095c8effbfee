// Package browsertest drives headless Chromium over the Chrome DevTools
// Protocol for tests, with only the standard library: it starts the
// browser, attaches to a page, runs commands and JavaScript, waits for
// conditions and takes screenshots. It is imported only by _test files.
//
// A missing Chromium fails the test (never skips): apt-get install chromium.
package browsertest
