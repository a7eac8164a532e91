import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.venv/', 'dist/', 'models/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Fastify plugins and hooks are async functions by convention, awaited or not.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The engine's public interface is engine/index.ts: nothing outside src/engine/ imports the rest.
    files: ['src/**/*.ts', 'test/**/*.ts', 'scripts/**/*.ts', 'bench/**/*.ts'],
    ignores: ['src/engine/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/engine/*', '!**/engine/index.ts'],
              message: 'Import the engine through its public interface, src/engine/index.ts.',
            },
          ],
        },
      ],
    },
  },
  {
    // The engine speaks no HTTP and no OpenAI: its failures are EngineErrors, translated by the server.
    files: ['src/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/server/*', '**/openai/*', '**/api-errors.ts', 'fastify', '@fastify/*'],
              message: 'The engine raises EngineErrors; src/server/error-translation.ts makes OpenAI errors of them.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // node:test's describe/it return promises that the runner itself awaits.
      '@typescript-eslint/no-floating-promises': 'off',
    },
  },
  {
    // The playground's browser code (plain ES modules, no build step): TypeScript checks it (checkJs,
    // src/playground/tsconfig.json), names included, with the browser's globals.
    files: ['src/playground/**/*.js'],
    rules: { 'no-undef': 'off' },
  },
  {
    // The fake engine worker is plain JavaScript (it must start in milliseconds, without tsx), and so is
    // the CLI's launcher (it starts tsx): linted without type information.
    files: ['test/support/*.mjs', 'bin/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', Buffer: 'readonly', setTimeout: 'readonly' } },
  },
);
