/**
 * Import first in tests that drive ink through fake terminals: ink reads CI / CONTINUOUS_INTEGRATION
 * once, when it loads (the is-in-ci package), and then renders only the final frame. CI runs set CI=true;
 * these tests are about the live, interactive rendering, so they hide it before ink loads.
 */
delete process.env.CI;
delete process.env.CONTINUOUS_INTEGRATION;
