// Package browsertest starts headless Chromium for tests and hands them a
// chromedp context on one tab; the tests drive the page with chromedp
// actions. It is imported only by _test files.
//
// A missing Chromium fails the test (never skips): apt-get install chromium.
package browsertest
