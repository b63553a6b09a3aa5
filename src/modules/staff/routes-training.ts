import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { staffOf } from './context.ts';
import { idParam, operator, staffErrors } from './routes-common.ts';
import type { StaffServices } from './services.ts';
import type { CourseDef, TrainingStatus } from './training-service.ts';

/** Training courses, completions, each member's status, and the list of members blocked by training. */
const course = z.object({ name: z.string(), title: z.string(), required_for: z.union([z.literal('all'), z.array(z.string())]), updated_at: z.string() });
const status = z
  .object({
    member_id: z.string(),
    role: z.string(),
    status: z.string(),
    blocked: z.boolean(),
    courses: z.array(
      z.object({ course: z.string(), required: z.boolean(), completed_on: z.string().nullable(), expires_on: z.string().nullable(), state: z.enum(['valid', 'expired', 'missing']) }),
    ),
  })
  ;

const courseView = (c: CourseDef) => ({ name: c.name, title: c.title, required_for: c.requiredFor === 'all' ? ('all' as const) : [...c.requiredFor], updated_at: c.updatedAt });
const statusView = (s: TrainingStatus) => ({
  member_id: s.memberId,
  role: s.role,
  status: s.status,
  blocked: s.blocked,
  courses: s.courses.map((c) => ({ course: c.course, required: c.required, completed_on: c.completedOn, expires_on: c.expiresOn, state: c.state })),
});
const courseName = z.object({ name: z.string().regex(/^[a-z][a-z0-9_]{1,63}$/) });

export function registerTrainingRoutes(app: FastifyInstance, deps: { staff: StaffServices }): void {
  const { training, directory } = deps.staff;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['staff training'];

  r.get('/v1/staff/training/courses', {
    schema: { tags, summary: 'Training courses and which roles need them', response: { 200: z.object({ data: z.array(course) }), ...staffErrors } },
    handler: async (request) => {
      await directory.authorizeSelf(staffOf(request));
      return { data: (await training.listCourses()).map(courseView) };
    },
  });

  r.put('/v1/staff/training/courses/:name', {
    schema: {
      tags,
      summary: 'Add or change a course (training.manage)',
      params: courseName,
      body: z.object({ title: z.string().max(200).optional(), required_for: z.union([z.literal('all'), z.array(z.string().max(32)).max(64)]) }).strict(),
      response: { 200: course, ...staffErrors },
    },
    handler: async (request) =>
      courseView(
        await training.defineCourse(operator(staffOf(request)), {
          name: request.params.name,
          requiredFor: request.body.required_for,
          ...(request.body.title === undefined ? {} : { title: request.body.title }),
        }),
      ),
  });

  r.delete('/v1/staff/training/courses/:name', {
    schema: { tags, summary: 'Remove a course (training.manage)', params: courseName, response: { 204: z.null(), ...staffErrors } },
    handler: async (request, reply) => {
      await training.removeCourse(operator(staffOf(request)), request.params.name);
      return reply.code(204).send(null);
    },
  });

  r.post('/v1/staff/training/completions', {
    schema: {
      tags,
      summary: 'Record that a member completed a course on a date (training.manage)',
      body: z.object({ member_id: z.string().max(40), course: z.string().max(64), completed_on: z.string().max(10) }).strict(),
      response: { 201: z.object({ id: z.string(), expires_on: z.string() }), ...staffErrors },
    },
    handler: async (request, reply) => {
      const { member_id, course: name, completed_on } = request.body;
      const done = await training.recordCompletion(operator(staffOf(request)), { memberId: member_id, course: name, completedOn: completed_on });
      return reply.code(201).send({ id: done.id, expires_on: done.expiresOn });
    },
  });

  r.get('/v1/staff/training/status', {
    schema: { tags, summary: "Every member's training (training.manage)", response: { 200: z.object({ data: z.array(status) }), ...staffErrors } },
    handler: async (request) => ({ data: (await training.statusAll(operator(staffOf(request)))).map(statusView) }),
  });

  r.get('/v1/staff/training/status/:id', {
    schema: { tags, summary: "One member's training (training.manage, or oneself)", params: idParam('stf'), response: { 200: status, ...staffErrors } },
    handler: async (request) => statusView(await training.status(operator(staffOf(request)), request.params.id)),
  });

  r.get('/v1/staff/training/blocked', {
    schema: {
      tags,
      summary: 'Members refused personal data because required training is missing or expired (training.manage)',
      response: { 200: z.object({ data: z.array(status) }), ...staffErrors },
    },
    handler: async (request) => ({ data: (await training.blocked(operator(staffOf(request)))).map(statusView) }),
  });
}
