// The page: the API's /api/stats fetched on the server at request time.
export const dynamic = "force-dynamic";

const API_URL = process.env.API_URL || "http://127.0.0.1:8000";

export default async function Page() {
  let stats = null;
  let error = null;
  try {
    const res = await fetch(`${API_URL}/api/stats`, { cache: "no-store" });
    stats = await res.json();
  } catch (e) {
    error = String(e);
  }
  return (
    <main>
      <h1>ringmaster example: FastAPI + Next.js</h1>
      <p>Data from the API at <code>{API_URL}</code>, fetched by the server:</p>
      {error ? <p>The API did not answer: {error}</p> : <pre id="stats">{JSON.stringify(stats, null, 2)}</pre>}
    </main>
  );
}
