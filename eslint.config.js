// Lint: typescript-eslint's type-checked rules on the gateway and its SDK; the tests, the kit they
// share with the benchmark, the benchmark and the scripts get the same, less the rules about `any`
// (they read JSON answers as they come) and those tap's idiom breaks.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      '.node24/',
      '.bench/',
      '.spike/',
      'public/',
      'scripts/mediasoup/',
      'coverage/',
      '.tap/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A `!` or a cast the type checker would accept without is often what steers inference here
      // (a logger's type, a method name's union): removing them is not always safe.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // An async method with no await is how an interface of promises is met by a synchronous answer.
      '@typescript-eslint/require-await': 'off',
      // A variable a closure reads before it is set (a timer's handle, a dispatcher its own counters ask) stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    // Media is timed on the monotonic clock: the wall clock, which an NTP correction or a resumed VM
    // steps, is read only through src/core/clock.ts's wallClockMs, where a date is meant.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'Date',
          property: 'now',
          message: 'Use clock.ts: monotonicMs() to time media or measure durations, wallClockMs() for a date.',
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'kit/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // tap's own idiom: subtests are started without awaiting them.
      '@typescript-eslint/no-floating-promises': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
);
