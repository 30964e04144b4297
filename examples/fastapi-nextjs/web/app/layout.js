// The root layout of the example web app.
export const metadata = { title: "ringmaster example" };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: "sans-serif", margin: "2em" }}>{children}</body>
    </html>
  );
}
