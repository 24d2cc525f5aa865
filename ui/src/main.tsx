import { TransportProvider } from "@connectrpc/connect-query";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { Code, ConnectError } from "@connectrpc/connect";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app.js";
import { onSessionChange, transport } from "./session.js";
import "./styles.css";

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 10_000,
      // A refusal or a missing resource will not change by asking again.
      retry: (count, err) => {
        const code = ConnectError.from(err).code;
        return count < 2 && ![Code.PermissionDenied, Code.NotFound, Code.Unauthenticated, Code.InvalidArgument].includes(code);
      },
      refetchOnWindowFocus: false,
    },
  },
});

// Whatever one session read must never show in the next (sign-out, a 401, another account signing
// in in this tab): the cache is emptied the moment the session changes, before any screen renders
// again, and calls still in flight are cancelled so their answers cannot land in it afterwards.
onSessionChange(() => {
  void queryClient.cancelQueries();
  queryClient.clear();
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <TransportProvider transport={transport}>
      <QueryClientProvider client={queryClient}>
        <App />
      </QueryClientProvider>
    </TransportProvider>
  </StrictMode>,
);
