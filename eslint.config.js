// Type-aware linting for the whole project. `npm run lint` runs it with Prettier's check; the
// test suite runs both (test/lint.test.ts), so a warning fails CI like a failing test.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/", "gen/", "node_modules/", "coverage/", "data/", "bench/.cache/"] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // A promise nobody awaits or catches can end the process (an unhandled rejection).
      "@typescript-eslint/no-floating-promises": ["error", { ignoreVoid: true }],
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // `async` without `await` here keeps a contract (ContentDriver methods, handlers, async generators): it rejects instead of throwing.
      "@typescript-eslint/require-await": "off",
      // A `let` that signal handlers read before it is assigned must stay a `let`: a `const` there would be in its TDZ.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
      // Passing on a rejection reason we did not create (typed unknown) is fine; rejecting with a literal is not.
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true }],
      // A control character typed into a string, template or regular expression reads as nothing:
      // a "\b" that an edit turned into a backspace kept the embedded database's prepared
      // statements off unseen. Such a character is written as an escape.
      "no-restricted-syntax": [
        "error",
        ...["Literal[raw", "TemplateElement[value.raw"].map((node) => ({
          selector: `${node}=/[\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F]/]`,
          message: "A raw control character in source text: write it as an escape (\\b, \\u0008).",
        })),
      ],
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
