package cli

import (
	"strings"

	"github.com/ppool/ppool/jobs"
)

// schemaObject is a JSON Schema node; a map keeps the output's keys as
// JSON Schema names them, sorted by encoding/json.
type schemaObject = map[string]any

// jobsSchema is a JSON Schema (draft-07, the draft the YAML language
// server and most editors support fully) of a jobs file with the given
// kinds: the keys of every job, the kinds as an enum, and each kind's
// params and inputs through if/then on "kind". It describes the shape;
// ppool run still checks what a schema cannot (files exist, outputs do
// not collide, after names earlier jobs).
func jobsSchema(kinds []*jobs.Kind) schemaObject {
	var names []string
	var perKind []any
	for _, k := range kinds {
		names = append(names, k.Name)
		perKind = append(perKind, schemaObject{
			"if":   schemaObject{"properties": schemaObject{"kind": schemaObject{"const": k.Name}}, "required": []string{"kind"}},
			"then": kindSchema(k),
		})
	}
	stringOrList := func(doc string) schemaObject {
		return schemaObject{"description": doc, "anyOf": []any{
			schemaObject{"type": "string", "minLength": 1},
			schemaObject{"type": "array", "items": schemaObject{"type": "string", "minLength": 1}, "minItems": 1},
		}}
	}
	job := schemaObject{
		"type":     "object",
		"required": []string{"name", "kind"},
		"properties": schemaObject{
			"name":    schemaObject{"type": "string", "pattern": `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, "description": "unique; letters, digits, '_', '.' and '-'"},
			"kind":    schemaObject{"enum": names, "description": "what the job does (ppool kinds)"},
			"params":  schemaObject{"type": "object", "description": "the kind's parameters; defaults fill in the rest"},
			"inputs":  schemaObject{"description": "a path, a glob (** for any depth), or a list; several inputs: a mapping of input name to that"},
			"exclude": stringOrList("input files to leave out: globs; one without / matches file names anywhere"),
			"count":   schemaObject{"type": "integer", "minimum": 1, "maximum": jobs.MaxTasks, "description": "with generated inputs, how many tasks"},
			"output": schemaObject{"type": "string", "minLength": 1,
				"description": "output path template: {job} {index} {stem} {name} {ext} (the input's extension, with its dot) {dir} (the input's folder)"},
			"timeout": schemaObject{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, "description": "per task, from when it starts, e.g. 30s, 2m"},
			"retries": schemaObject{"type": "integer", "minimum": 0, "maximum": 100, "description": "runs again after a crash, timeout or memory kill"},
			"memory": schemaObject{"anyOf": []any{schemaObject{"type": "integer", "minimum": 1 << 20}, schemaObject{"type": "string"}},
				"description": "a worker over this while running the task is killed, e.g. 512MiB, 2GiB"},
			"workers": schemaObject{"type": "integer", "minimum": 1, "maximum": 4096, "description": "at most this many of the job's tasks at once"},
			"after":   stringOrList("jobs, earlier in the file, that this one waits for"),
			"worker": schemaObject{
				"type": "object", "required": []string{"command"}, "additionalProperties": false,
				"description": "the job's own worker binary",
				"properties": schemaObject{
					"command": schemaObject{"type": "string"},
					"args":    stringOrList("arguments"),
					"env":     schemaObject{"type": "object", "additionalProperties": schemaObject{"type": []string{"string", "integer"}}},
					"sha256":  schemaObject{"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
					"plugin":  schemaObject{"type": "boolean"},
				},
			},
		},
		// A merge key (<<: *defaults) is resolved before the schema
		// applies, in editors as in ppool.
		"additionalProperties": false,
		"allOf":                perKind,
	}
	return schemaObject{
		"$schema":     "http://json-schema.org/draft-07/schema#",
		"title":       "ppool jobs file",
		"description": "A file of jobs for ppool run; kinds: " + strings.Join(names, ", ") + ".",
		"type":        "object",
		"required":    []string{"jobs"},
		"properties": schemaObject{
			"jobs": schemaObject{"type": "array", "minItems": 1, "items": schemaObject{"$ref": "#/definitions/job"}},
		},
		"patternProperties":    schemaObject{"^x-": schemaObject{"description": "ignored by ppool: a place for YAML anchors"}},
		"additionalProperties": false,
		"definitions": schemaObject{
			"job":   job,
			"files": stringOrList("a path, a glob (** for any depth), or a list of them"),
			"generated": schemaObject{
				"type": "object", "additionalProperties": false,
				"description": "a generated matrix: {random: [rows, cols], seed: N} or {identity: N}",
				"properties": schemaObject{
					"random":   schemaObject{"type": "array", "items": schemaObject{"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2},
					"identity": schemaObject{"type": "integer", "minimum": 1},
					"seed":     schemaObject{"type": "integer", "minimum": 0},
				},
				"oneOf": []any{schemaObject{"required": []string{"random"}}, schemaObject{"required": []string{"identity"}}},
			},
		},
	}
}

// kindSchema is what a job of kind k adds: its params and its inputs.
func kindSchema(k *jobs.Kind) schemaObject {
	params := schemaObject{}
	var required []string
	for _, p := range k.Params {
		ps := schemaObject{"description": p.Doc}
		switch p.Type {
		case jobs.TypeInt:
			ps["type"] = "integer"
		case jobs.TypeFloat:
			ps["type"] = "number"
		case jobs.TypeBool:
			ps["type"] = "boolean"
		case jobs.TypeString:
			ps["type"] = "string"
		}
		if p.Min != nil {
			ps["minimum"] = *p.Min
		}
		if p.Max != nil {
			ps["maximum"] = *p.Max
		}
		if len(p.Choices) > 0 {
			ps["enum"] = p.Choices
		}
		if p.Required {
			required = append(required, p.Name)
		} else {
			ps["default"] = p.Default
		}
		params[p.Name] = ps
	}
	paramsSchema := schemaObject{"type": "object", "properties": params, "additionalProperties": false}
	if len(required) > 0 {
		paramsSchema["required"] = required
	}
	then := schemaObject{"properties": schemaObject{"params": paramsSchema}}
	var jobRequired []string
	if len(required) > 0 {
		jobRequired = append(jobRequired, "params")
	}
	slot := func(s jobs.Slot) schemaObject {
		ref := schemaObject{"$ref": "#/definitions/files"}
		if !s.Generate {
			return schemaObject{"description": s.Doc, "allOf": []any{ref}}
		}
		return schemaObject{"description": s.Doc, "anyOf": []any{ref, schemaObject{"$ref": "#/definitions/generated"}}}
	}
	switch len(k.Slots) {
	case 0:
		then["not"] = schemaObject{"required": []string{"inputs"}}
	case 1:
		then["properties"].(schemaObject)["inputs"] = slot(k.Slots[0])
		jobRequired = append(jobRequired, "inputs")
	default:
		slots := schemaObject{}
		var names []string
		for _, s := range k.Slots {
			slots[s.Name] = slot(s)
			names = append(names, s.Name)
		}
		then["properties"].(schemaObject)["inputs"] = schemaObject{"type": "object", "properties": slots, "required": names, "additionalProperties": false}
		jobRequired = append(jobRequired, "inputs")
	}
	if k.NeedsWorker {
		jobRequired = append(jobRequired, "worker")
	}
	if len(jobRequired) > 0 {
		then["required"] = jobRequired
	}
	return then
}
