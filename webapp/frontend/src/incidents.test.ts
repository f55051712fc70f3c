import { describe, expect, it } from "vitest";
import { fieldMessages } from "./api";
import { parseRoute } from "./hooks";
import { causeText, incidentHref, incidentTitle, incidentsUrl, matcherText, ruleLabel, silenceRequest } from "./incidents";
import type { SilenceForm } from "./incidents";

const ID = "region_silence|saint-louis|20261126T120000.000000Z";

describe("incident links", () => {
  it("encodes the id, and the route decodes it back", () => {
    expect(incidentHref(ID)).toBe("#/incidents/region_silence%7Csaint-louis%7C20261126T120000.000000Z");
    expect(parseRoute(incidentHref(ID))).toEqual({ page: "incident", incidentId: ID });
    expect(parseRoute("#/incidents")).toEqual({ page: "incidents" });
    expect(parseRoute("#/incidents/%E0%A4%A")).toEqual({ page: "missing", path: "/incidents/%E0%A4%A" });
  });
});

describe("history query", () => {
  const now = Date.parse("2026-11-26T12:00:42Z");
  it("sends only the filters set, the range from the minute", () => {
    expect(incidentsUrl({ status: "", rule: "", subject: " ", range: "all" }, 0, now)).toBe("/api/incidents?limit=20&offset=0");
    const url = new URL(incidentsUrl({ status: "firing", rule: "region_silence", subject: " dakar ", range: "1h" }, 40, now), "http://x");
    expect(Object.fromEntries(url.searchParams)).toEqual({
      status: "firing",
      rule: "region_silence",
      subject: "dakar",
      since: "2026-11-26T11:00:00.000Z",
      limit: "20",
      offset: "40",
    });
  });
});

describe("words", () => {
  it("names rules and matchers", () => {
    expect(ruleLabel("region_silence")).toBe("Region silence");
    expect(ruleLabel(null)).toBe("Any rule");
    expect(matcherText({ rule: null, subject: "dakar" })).toBe("every rule · dakar");
    expect(matcherText({ rule: "crash_loop", subject: null })).toBe("Crash loop · every region and subject");
    const base = { rule: "service_down", region_name: null, region_id: null, subject: "shipper" };
    expect(incidentTitle({ ...base, title: null })).toBe("Service down · shipper");
    expect(incidentTitle({ ...base, title: "Elasticsearch shipping stopped" })).toBe("Elasticsearch shipping stopped · shipper");
    expect(causeText("service_down|producer")).toBe("Service down · producer");
  });
  it("reads a 422's messages by field", () => {
    expect(
      fieldMessages([
        { field: "ends_at", in: "body", message: "Value error, must be after starts_at" },
        { field: "ends_at", in: "body", message: "second" },
        { nonsense: true },
      ]),
    ).toEqual({ ends_at: "must be after starts_at" });
    expect(fieldMessages(undefined)).toEqual({});
  });
});

describe("silence form", () => {
  const form: SilenceForm = { rule: "", subject: "dakar", mode: "duration", duration: "3600", until: "", comment: "moving", author: "awa" };
  it("builds the request body", () => {
    expect(silenceRequest(form)).toEqual({
      body: { rule: null, subject: "dakar", comment: "moving", author: "awa", duration_seconds: 3600 },
    });
    const until = silenceRequest({ ...form, rule: "region_silence", mode: "until", until: "2026-11-26T14:30" });
    expect("body" in until && until.body.ends_at && !Number.isNaN(Date.parse(until.body.ends_at))).toBe(true);
  });
  it("names each missing field", () => {
    expect(silenceRequest({ ...form, subject: " ", comment: "", author: "", mode: "until", until: "" })).toEqual({
      errors: {
        subject: "Choose a rule or enter a region (or both)",
        comment: "Say why (shown to everyone who sees the silence)",
        author: "Say who you are",
        ends_at: "Enter when the silence ends",
      },
    });
  });
});
