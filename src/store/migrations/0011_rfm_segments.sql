-- RFM segments (issue 12): per person (contact or lead), the segment the nightly `segments.rfm`
-- job computed last (null: no longer a client, to be cleared in the CRM) and the one it last
-- wrote to UF_CRM_SARAFAN_SEGMENT, so that only changes are written.
CREATE TABLE "crm_segments" (
	"portal_id" integer NOT NULL,
	"entity" text NOT NULL,
	"entity_id" integer NOT NULL,
	"segment" text,
	"computed_at" timestamp with time zone NOT NULL,
	"written_segment" text,
	"written_at" timestamp with time zone,
	CONSTRAINT "crm_segments_pk" PRIMARY KEY("portal_id","entity","entity_id"),
	CONSTRAINT "crm_segments_entity_check" CHECK (entity IN ('contact', 'lead')),
	CONSTRAINT "crm_segments_segment_check" CHECK (segment IN ('champion', 'loyal', 'promising', 'new', 'at_risk', 'sleeping', 'lost')),
	CONSTRAINT "crm_segments_written_check" CHECK (written_segment IN ('champion', 'loyal', 'promising', 'new', 'at_risk', 'sleeping', 'lost'))
);
--> statement-breakpoint
ALTER TABLE "crm_segments" ADD CONSTRAINT "crm_segments_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;
